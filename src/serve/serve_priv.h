/* `petrel serve`'s pieces (server.c: the daemon, routing, replies, static
 * files; auth.c: logins, sessions, CSRF, rate limit; api.c: /api/v1;
 * rrd.c: the metrics history; ws.c: console WebSockets; mhd.c: the
 * libmicrohttpd functions, loaded with dlopen).  Not an interface for
 * anything outside src/serve. */
#ifndef PETREL_SERVE_PRIV_H
#define PETREL_SERVE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "core/log.h"

#define SRV_MAX_BODY (64 * 1024)        /* larger request bodies: 413 */
#define SRV_RRD_SECONDS 3600            /* history kept per VM */

/* --- mhd.c ---------------------------------------------------------------- */

struct srv_mhd {
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_create_response_for_upgrade) *create_response_for_upgrade;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_get_connection_info) *get_connection_info;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_is_feature_supported) *is_feature_supported;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_upgrade_action) *upgrade_action;
};
extern struct srv_mhd srv_mhd;
int srv_mhd_load(struct err *e);
/* SHA-1 (GnuTLS, which libmicrohttpd brings): 0 or -1. */
int srv_sha1(const void *data, size_t len, unsigned char out[20]);

/* --- server.c ------------------------------------------------------------- */

struct srv_req {
    struct MHD_Connection *conn;
    const char *method, *path;
    char *body;                 /* NUL-terminated */
    size_t len;
    bool tls;
    char client[64];            /* the peer's address */
    char csrf[65];              /* the session's CSRF token; "" if not logged in */
};

const char *srv_header(const struct srv_req *r, const char *name);
const char *srv_query(const struct srv_req *r, const char *name);
const char *srv_cookie(const struct srv_req *r, const char *name);
/* Queue an answer; hdrs: NULL-terminated name, value pairs (or NULL).
 * MHD_YES/MHD_NO as the access handler returns. */
enum MHD_Result srv_send(const struct srv_req *r, unsigned status, const char *ctype,
                         const void *body, size_t len, const char *const *hdrs);
/* j (stolen) as JSON. */
enum MHD_Result srv_json(const struct srv_req *r, unsigned status, json_t *j);
/* {"error": message} */
enum MHD_Result srv_error(const struct srv_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A file of the web directory (name: a checked relative path). */
enum MHD_Result srv_static(const struct srv_req *r, const char *name);

/* --- auth.c --------------------------------------------------------------- */

/* A token (printed into url_token) or the password file's first line. */
int auth_init(const char *password_file, char *url_token, size_t len, struct err *e);
/* The session of r's cookie: true and r->csrf set, or false. */
bool auth_session(struct srv_req *r);
/* POST /login, GET /?token=; POST /logout. */
enum MHD_Result auth_login(struct srv_req *r, const char *secret, bool redirect);
enum MHD_Result auth_logout(struct srv_req *r);
/* Whether r carries X-CSRF-Token equal to its session's. */
bool auth_csrf_ok(const struct srv_req *r);
/* Whether a WebSocket upgrade's Origin is this server (scheme://Host). */
bool auth_origin_ok(const struct srv_req *r);
/* Constant-time comparison of two strings. */
bool auth_equal(const char *a, const char *b);

/* --- api.c ---------------------------------------------------------------- */

/* Everything under /api/v1/ (rest: the path after it), r authenticated. */
enum MHD_Result api_handle(struct srv_req *r, const char *rest);

/* --- rrd.c ---------------------------------------------------------------- */

int rrd_start(unsigned interval_s, struct err *e);
void rrd_stop(void);
/* The history of name ({"interval_s", "t": [...], "cpu": [...], ...}); NULL
 * when nothing was sampled. */
json_t *rrd_series(const char *name, unsigned seconds);
/* The latest sample's rates into o (cpu, net_rx_bps, ...), if any. */
void rrd_latest(const char *name, json_t *o);

/* --- ws.c ----------------------------------------------------------------- */

/* GET /api/v1/vms/NAME/console with Upgrade: websocket. */
enum MHD_Result ws_console(struct srv_req *r, const char *name);
/* GET /api/v1/vms/NAME/vnc with Upgrade: websocket: RFB to its vnc.sock. */
enum MHD_Result ws_vnc(struct srv_req *r, const char *name);

#endif
