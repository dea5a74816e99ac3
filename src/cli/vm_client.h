/* A client of a running VMM's REST API (docs/control-plane.md) over its
 * unix socket: libcurl with CURLOPT_UNIX_SOCKET_PATH, JSON with jansson.
 *
 * Design: libcurl is not linked but loaded with dlopen (libcurl.so.4, else
 * libcurl-gnutls.so.4) on the first request, its functions resolved with
 * dlsym: linked, it and its ~40 dependencies (TLS, Kerberos, LDAP...) would
 * be loaded by every `petrel run` at exec, for nothing.
 *
 * Threads: any; the first use loads and initialises libcurl once
 * (pthread_once: curl_global_init is not thread-safe).  The loaded library
 * is process-wide, written once, then only read, and never unloaded.
 *
 * What can fail: loading libcurl (-ELIBACC, the message names the library
 * and the Debian package), connecting (no socket, nobody listening:
 * -ECONNREFUSED or -ENOENT), a timeout (-ETIMEDOUT), a non-2xx answer
 * (-EPROTO, with the VMM's fault_message in the error), a body that is not
 * JSON where JSON was expected (-EBADMSG). */
#ifndef PETREL_CLI_VM_CLIENT_H
#define PETREL_CLI_VM_CLIENT_H

#include <jansson.h>

#include "core/log.h"

#define VM_CLIENT_MAX_BODY (4u << 20)
#define VM_CLIENT_LIBCURL "libcurl.so.4"

/* Load libcurl now (requests do it themselves): 0, or -ELIBACC and why. */
int vm_client_init(struct err *e);
/* Whether soname (NULL: the libraries the client tries) loads and has every
 * function the client uses: 0 or -ELIBACC with the reason.  For tests. */
int vm_client_check_lib(const char *soname, struct err *e);

/* One request.  body: JSON to send (NULL: none).  *status: the HTTP status
 * (0 if there was no answer).  *resp (may be NULL): the answer's body,
 * NUL-terminated, malloc'ed.  Returns 0 when an answer came (any status),
 * <0 when none did. */
int vm_client_request(const char *sock, const char *method, const char *path,
                      const json_t *body, long timeout_ms, long *status, char **resp,
                      struct err *e);

/* GET path, expecting 200 and a JSON body: *out is a new reference. */
int vm_client_get_json(const char *sock, const char *path, long timeout_ms, json_t **out,
                       struct err *e);
/* A request expecting 2xx (204 for PUT/PATCH); anything else is an error
 * carrying the VMM's fault_message. */
int vm_client_call(const char *sock, const char *method, const char *path, const json_t *body,
                   long timeout_ms, struct err *e);

#endif
