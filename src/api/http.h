/* A small HTTP/1.1 server for the VMM's REST API, on a unix socket, driven
 * by the VM's event loop.
 *
 * Design
 * - libmicrohttpd without a thread of its own (MHD_USE_EPOLL, no internal
 *   polling thread): its epoll descriptor is registered with evloop_add_ctl
 *   and MHD_run runs whenever it is readable; after every run an evloop
 *   timer is armed from MHD_get_timeout, so connection timeouts fire even
 *   when no descriptor becomes readable.
 * - A connection idle for HTTP_CONN_TIMEOUT_S seconds (one that connects
 *   and never sends, or stops half-way through a request) is closed; at
 *   most HTTP_MAX_CONNS connections are served at once (more wait in the
 *   listen backlog or are refused by libmicrohttpd).  Keep-alive works.
 * - A request's whole body is collected (at most HTTP_MAX_BODY bytes),
 *   then one handler runs with the method, the path (percent-decoded, no
 *   query), the raw query string (after '?', still percent-encoded; "" if
 *   none) and the body (NUL-terminated, "" with len 0 if none).  It fills a
 *   struct http_reply; the server sends it and frees the body.
 * - A body over HTTP_MAX_BODY is answered 400 with a Firecracker error body
 *   ({"fault_message": "Request payload with size N is larger than the
 *   limit of 65536 allowed by server."}), as Firecracker's own server
 *   answers, not 413: Firecracker clients handle every error as 400 +
 *   fault_message.  The answer comes before the body is read when the
 *   client asked "Expect: 100-continue" (it waits); otherwise the body is
 *   read and discarded first (memory stays bounded), so a client still
 *   sending gets the answer rather than a broken pipe.  Past
 *   HTTP_DISCARD_MAX bytes (declared or received) the server answers at
 *   once or, in the middle of a chunked body, hangs up.  The connection is
 *   closed after the answer.
 *
 * Threads: none of its own.  Everything, the handler included, runs on the
 * event-loop thread in control context (without the device lock).
 *
 * What can fail: creating the socket (path too long, a non-socket file in
 * the way, another process serving the path, permissions) and starting
 * libmicrohttpd, through struct err.  Afterwards nothing a client does is
 * an error of the server: bad requests get 4xx answers, broken
 * connections are closed. */
#ifndef PETREL_API_HTTP_H
#define PETREL_API_HTTP_H

#include <stddef.h>

#include "core/evloop.h"
#include "core/log.h"

#define HTTP_MAX_BODY (64 * 1024)
#define HTTP_DISCARD_MAX (16 * 1024 * 1024)
#define HTTP_CONN_TIMEOUT_S 5
#define HTTP_MAX_CONNS 256

struct http_reply {
    unsigned status;            /* 200, 204, 400, ...; 0 is answered 500 */
    const char *content_type;   /* a static string; NULL: none (204) */
    char *body;                 /* malloc'd, freed by the server; NULL: empty */
    size_t len;
};

typedef void (*http_handler)(void *opaque, const char *method, const char *path,
                             const char *query, const char *body, size_t len,
                             struct http_reply *r);

struct http_server;

/* Serve HTTP on listen_fd (a listening stream socket) from loop.  On
 * success the server owns listen_fd (http_server_free closes it; the
 * socket file is the caller's to remove); on failure it is still the
 * caller's. */
struct http_server *http_server_new(int listen_fd, struct evloop *loop, http_handler handler,
                                    void *opaque, struct err *e);
/* Close every connection and the listening socket.  Event-loop thread,
 * before the loop itself is freed. */
void http_server_free(struct http_server *s);

/* A listening unix stream socket at path, mode 0600, non-blocking and
 * close-on-exec.  A stale socket file (nobody accepts on it) is replaced;
 * a socket someone serves, or a file that is not a socket, is refused.
 * Returns the descriptor or a negative errno (message in e). */
int http_listen_unix(const char *path, struct err *e);
/* Load libmicrohttpd now (it is otherwise loaded by the first server): for
 * a VMM about to lose sight of the host's libraries (--jail). */
int http_preload(struct err *e);

#endif
