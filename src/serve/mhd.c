/* libmicrohttpd for `petrel serve`, loaded with dlopen as the VMM's API
 * does (src/api/http.c: loading it and GnuTLS at exec would cost every
 * petrel command ~15 ms), and SHA-1 from GnuTLS for WebSocket handshakes. */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "serve/serve_priv.h"

#define MHD_SONAME "libmicrohttpd.so.12"
#define GNUTLS_SONAME "libgnutls.so.30"

struct srv_mhd srv_mhd;
static __typeof__(gnutls_hash_fast) *hash_fast;

#define SYM(n) { "MHD_" #n, offsetof(struct srv_mhd, n) }
static const struct { const char *name; size_t off; } syms[] = {
    SYM(add_response_header), SYM(create_response_from_buffer),
    SYM(create_response_for_upgrade), SYM(destroy_response), SYM(get_connection_info),
    SYM(get_daemon_info), SYM(is_feature_supported), SYM(lookup_connection_value),
    SYM(queue_response), SYM(start_daemon), SYM(stop_daemon), SYM(upgrade_action),
};

int srv_mhd_load(struct err *e)
{
    void *h = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return err_set(e, -ELIBACC, "cannot load %s, the HTTP server: %s (Debian: apt-get "
                       "install libmicrohttpd12)", MHD_SONAME, dlerror());
    for (unsigned i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f)
            return err_set(e, -ELIBACC, "%s has no %s", MHD_SONAME, syms[i].name);
        memcpy((char *)&srv_mhd + syms[i].off, &f, sizeof(f));
    }
    void *g = dlopen(GNUTLS_SONAME, RTLD_NOW | RTLD_LOCAL);
    void *f = g ? dlsym(g, "gnutls_hash_fast") : NULL;
    if (!f)
        return err_set(e, -ELIBACC, "cannot load gnutls_hash_fast from %s (Debian: apt-get "
                       "install libgnutls30)", GNUTLS_SONAME);
    memcpy(&hash_fast, &f, sizeof(f));
    return 0;
}

int srv_sha1(const void *data, size_t len, unsigned char out[20])
{
    return hash_fast(GNUTLS_DIG_SHA1, data, len, out) < 0 ? -1 : 0;
}
