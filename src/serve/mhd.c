/* libmicrohttpd for `petrel serve`, loaded with dlopen as the VMM's API
 * does (src/api/http.c: loading it and GnuTLS at exec would cost every
 * petrel command ~15 ms), and SHA-1 from GnuTLS for WebSocket handshakes. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "core/dynlib.h"
#include "serve/serve_priv.h"

#define MHD_SONAME "libmicrohttpd.so.12"
#define GNUTLS_SONAME "libgnutls.so.30"

struct srv_mhd srv_mhd;

#define SYM(n) { "MHD_" #n, offsetof(struct srv_mhd, n) }
static const struct dynlib_sym syms[] = {
    SYM(add_response_header), SYM(create_response_from_buffer),
    SYM(create_response_for_upgrade), SYM(destroy_response), SYM(get_connection_info),
    SYM(get_daemon_info), SYM(is_feature_supported), SYM(lookup_connection_value),
    SYM(queue_response), SYM(start_daemon), SYM(stop_daemon), SYM(upgrade_action),
};
static struct dynlib mhd_lib = { MHD_SONAME, "the HTTP server", "libmicrohttpd12", syms,
                                 sizeof(syms) / sizeof(syms[0]), NULL };

static struct { __typeof__(gnutls_hash_fast) *hash_fast; } tls;
static const struct dynlib_sym tls_syms[] = { { "gnutls_hash_fast", 0 } };
static struct dynlib tls_lib = { GNUTLS_SONAME, "SHA-1 for WebSocket handshakes", "libgnutls30",
                                 tls_syms, 1, NULL };

int srv_mhd_load(struct err *e)
{
    if (dynlib_load(&mhd_lib, &srv_mhd, e) < 0 || dynlib_load(&tls_lib, &tls, e) < 0)
        return -ELIBACC;
    return 0;
}

int srv_sha1(const void *data, size_t len, unsigned char out[20])
{
    return tls.hash_fast(GNUTLS_DIG_SHA1, data, len, out) < 0 ? -1 : 0;
}
