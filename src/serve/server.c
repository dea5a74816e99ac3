/* `petrel serve`: the daemon (libmicrohttpd, a thread per connection),
 * request bodies, routing, replies and the web directory's files.  What
 * is served to whom: docs/serve.md ("Authentication").
 *
 * Design
 * - A request's body is collected whole (at most SRV_MAX_BODY bytes) and
 *   then one handler runs.  A Content-Length over the limit is answered
 *   413 before the body is read (the connection is then closed); a chunked
 *   body that grows past it is discarded as it arrives and answered 413.
 * - Long operations (start, stop) block only their connection's thread.
 * - Every answer carries headers that keep the pages out of frames and
 *   other origins (CSP 'self', nosniff, no referrer: the start-up URL holds
 *   the token).
 *
 * Threads: libmicrohttpd's; the main thread waits for SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/vm_ops.h"
#include "serve/serve.h"
#include "serve/serve_priv.h"

#define MAX_STATIC (8u << 20)
#define MAX_CONNS 128

static char web_dir[PATH_MAX];
static char xterm_dir[PATH_MAX], novnc_dir[PATH_MAX];   /* "": not installed */
static bool use_tls;

struct conn_state {
    char *body;
    size_t len, cap;
    bool too_big;
};

/* --- requests and replies ------------------------------------------------- */

const char *srv_header(const struct srv_req *r, const char *name)
{
    return srv_mhd.lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *srv_query(const struct srv_req *r, const char *name)
{
    return srv_mhd.lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *srv_cookie(const struct srv_req *r, const char *name)
{
    return srv_mhd.lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

enum MHD_Result srv_send(const struct srv_req *r, unsigned status, const char *ctype,
                         const void *body, size_t len, const char *const *hdrs)
{
    struct MHD_Response *resp =
        srv_mhd.create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (ctype)
        srv_mhd.add_response_header(resp, "Content-Type", ctype);
    srv_mhd.add_response_header(resp, "X-Content-Type-Options", "nosniff");
    srv_mhd.add_response_header(resp, "X-Frame-Options", "DENY");
    srv_mhd.add_response_header(resp, "Referrer-Policy", "no-referrer");
    srv_mhd.add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; frame-ancestors 'none'");
    srv_mhd.add_response_header(resp, "Cache-Control", "no-store");
    for (unsigned i = 0; hdrs && hdrs[i]; i += 2)
        srv_mhd.add_response_header(resp, hdrs[i], hdrs[i + 1]);
    enum MHD_Result ret = srv_mhd.queue_response(r->conn, status, resp);
    srv_mhd.destroy_response(resp);
    return ret;
}

enum MHD_Result srv_json(const struct srv_req *r, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text)
        return srv_send(r, 500, "application/json", "{\"error\":\"out of memory\"}", 25, NULL);
    enum MHD_Result ret = srv_send(r, status, "application/json", text, strlen(text), NULL);
    free(text);
    return ret;
}

enum MHD_Result srv_error(const struct srv_req *r, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return srv_json(r, status, json_pack("{s:s}", "error", msg));
}

static const char *content_type(const char *name)
{
    static const char *const types[][2] = {
        { ".html", "text/html; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" }, { ".json", "application/json" },
        { ".svg", "image/svg+xml" }, { ".png", "image/png" }, { ".ico", "image/x-icon" },
        { ".woff2", "font/woff2" }, { ".map", "application/json" },
        { ".txt", "text/plain; charset=utf-8" },
    };
    const char *dot = strrchr(name, '.');
    for (unsigned i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return "application/octet-stream";
}

/* A relative path of segments [A-Za-z0-9_.-], none starting with '.'. */
static bool safe_name(const char *name)
{
    if (!*name || strlen(name) > 200)
        return false;
    bool seg_start = true;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == '/') {
            if (seg_start)
                return false;
            seg_start = true;
            continue;
        }
        if (seg_start && c == '.')
            return false;
        seg_start = false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return !seg_start;
}

/* name (checked) under dir. */
static enum MHD_Result static_in(const struct srv_req *r, const char *dir, const char *name)
{
    if (!dir[0] || !safe_name(name))
        return srv_error(r, 404, "not found");
    char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_STATIC) {
        if (fd >= 0)
            close(fd);
        return srv_error(r, 404, "not found");
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return srv_error(r, 500, "%s: read error", name);
    }
    enum MHD_Result ret = srv_send(r, 200, content_type(name), buf, got, NULL);
    free(buf);
    return ret;
}

enum MHD_Result srv_static(const struct srv_req *r, const char *name)
{
    return static_in(r, web_dir, name);
}

/* The consoles' libraries (logged-in clients only): /vendor/xterm/ from
 * the build's bundle of Debian's node-xterm, /vendor/novnc/ from Debian's
 * novnc (its ES modules: core/ and vendor/ only). */
static enum MHD_Result vendor(const struct srv_req *r, const char *rest)
{
    if (!strncmp(rest, "xterm/", 6))
        return static_in(r, xterm_dir, rest + 6);
    if (!strncmp(rest, "novnc/core/", 11) || !strncmp(rest, "novnc/vendor/", 13))
        return static_in(r, novnc_dir, rest + 6);
    return srv_error(r, 404, "not found");
}

/* --- routing -------------------------------------------------------------- */

/* The files an unauthenticated client may fetch: the login page's. */
static bool public_asset(const char *path)
{
    static const char *const pub[] = { "/login.html", "/login.js", "/style.css",
                                       "/favicon.svg" };
    for (unsigned i = 0; i < sizeof(pub) / sizeof(pub[0]); i++)
        if (!strcmp(path, pub[i]))
            return true;
    return false;
}

static bool is_get(const struct srv_req *r)
{
    return !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
}

static enum MHD_Result route(struct srv_req *r)
{
    const char *p = r->path;
    if (!strcmp(p, "/login"))
        return is_get(r) ? srv_static(r, "login.html")
                         : !strcmp(r->method, "POST") ? auth_login(r, NULL, false)
                                                      : srv_error(r, 405, "method not allowed");
    if (public_asset(p))
        return is_get(r) ? srv_static(r, p + 1) : srv_error(r, 405, "method not allowed");
    const char *token = srv_query(r, "token");
    if (!strcmp(p, "/") && is_get(r) && token)
        return auth_login(r, token, true);
    bool authed = auth_session(r);
    bool api = !strncmp(p, "/api/", 5);
    if (!authed) {
        if (!api && is_get(r)) {
            static const char *const loc[] = { "Location", "/login", NULL };
            return srv_send(r, 303, "text/plain; charset=utf-8", "log in at /login\n", 17, loc);
        }
        return srv_error(r, 401, "not logged in (POST /login with the token or password)");
    }
    /* state-changing requests need the session's CSRF token; the console
     * WebSocket (a GET) checks its Origin instead (ws.c) */
    if (!is_get(r) && !auth_csrf_ok(r))
        return srv_error(r, 403, "missing or wrong X-CSRF-Token header");
    if (!strncmp(p, "/api/v1/", 8))
        return api_handle(r, p + 8);
    if (api)
        return srv_error(r, 404, "no such API path (the API is under /api/v1/)");
    if (!strcmp(p, "/logout"))
        return !strcmp(r->method, "POST") ? auth_logout(r) : srv_error(r, 405, "use POST");
    if (!is_get(r))
        return srv_error(r, 405, "method not allowed");
    if (!strncmp(p, "/vendor/", 8))
        return vendor(r, p + 8);
    return srv_static(r, !strcmp(p, "/") ? "index.html" : p + 1);
}

static void client_addr(struct MHD_Connection *c, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        srv_mhd.get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = 0;
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct conn_state *s = *con_cls;
    struct srv_req r = { .conn = c, .method = method, .path = url, .tls = use_tls };
    if (!s) {
        if (!(s = calloc(1, sizeof(*s))))
            return MHD_NO;
        *con_cls = s;
        const char *cl = srv_mhd.lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > SRV_MAX_BODY) {
            s->too_big = true;
            return srv_error(&r, 413, "request body larger than %d bytes", SRV_MAX_BODY);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (s->too_big || s->len + n > SRV_MAX_BODY) {
            s->too_big = true;
            return MHD_YES;
        }
        if (s->len + n + 1 > s->cap) {
            size_t cap = (s->len + n + 1) * 2;
            char *b = realloc(s->body, cap < SRV_MAX_BODY + 1 ? cap : SRV_MAX_BODY + 1);
            if (!b)
                return MHD_NO;
            s->body = b;
            s->cap = cap < SRV_MAX_BODY + 1 ? cap : SRV_MAX_BODY + 1;
        }
        memcpy(s->body + s->len, upload, n);
        s->len += n;
        s->body[s->len] = 0;
        return MHD_YES;
    }
    if (s->too_big)
        return srv_error(&r, 413, "request body larger than %d bytes", SRV_MAX_BODY);
    r.body = s->body ? s->body : "";
    r.len = s->len;
    client_addr(c, r.client, sizeof(r.client));
    return route(&r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn_state *s = *con_cls;
    if (s) {
        free(s->body);
        free(s);
        *con_cls = NULL;
    }
}

/* --- start-up ------------------------------------------------------------- */

static int find_web_dir(const char *given, struct err *e)
{
    char idx[PATH_MAX + 16];
    if (given) {
        if (!realpath(given, web_dir))
            return err_set(e, -errno, "--web-dir %s: %s", given, strerror(errno));
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return err_set(e, -errno, "cannot find the petrel binary: %s", strerror(errno));
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    *slash = 0;
    static const char *const rel[] = { "../web", "../share/petrel/web", "web" };
    for (unsigned i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(idx, sizeof(idx), "%s/%s/index.html", exe, rel[i]);
        if (access(idx, R_OK) == 0) {
            snprintf(idx, sizeof(idx), "%s/%s", exe, rel[i]);
            if (realpath(idx, web_dir))
                return 0;
        }
    }
    return err_set(e, -ENOENT, "cannot find the web assets (web/index.html) next to %s; "
                   "pass --web-dir DIR", exe);
}

/* xterm.js (the build's bundle: vendor/xterm/ next to the binary, or
 * ../share/petrel/vendor/xterm) and noVNC (Debian's /usr/share/novnc):
 * without them the page says the console is missing. */
static void find_vendor_dirs(void)
{
    char exe[PATH_MAX], p[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        *strrchr(exe, '/') = 0;
        static const char *const rel[] = { "vendor/xterm", "../share/petrel/vendor/xterm" };
        for (unsigned i = 0; i < sizeof(rel) / sizeof(rel[0]) && !xterm_dir[0]; i++) {
            snprintf(p, sizeof(p), "%s/%s/xterm.js", exe, rel[i]);
            if (access(p, R_OK) == 0) {
                snprintf(p, sizeof(p), "%s/%s", exe, rel[i]);
                if (!realpath(p, xterm_dir))
                    xterm_dir[0] = 0;
            }
        }
    }
    if (access("/usr/share/novnc/core/rfb.js", R_OK) == 0)
        snprintf(novnc_dir, sizeof(novnc_dir), "/usr/share/novnc");
    if (!xterm_dir[0])
        fprintf(stderr, "petrel serve: note: no xterm.js bundle (build it with make; Debian's "
                "node-xterm): the page has no serial console\n");
    if (!novnc_dir[0])
        fprintf(stderr, "petrel serve: note: no /usr/share/novnc (Debian's novnc): the page "
                "has no graphical console\n");
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, bool *loopback,
                        struct err *e)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || strlen(s) >= sizeof(host))
        return err_set(e, -EINVAL, "--listen '%s': expected HOST:PORT", s);
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && hl > 2 && s[hl - 1] == ']')
        snprintf(host, sizeof(host), "%.*s", (int)hl - 2, s + 1);
    else
        snprintf(host, sizeof(host), "%.*s", (int)hl, s);
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || port > 65535)
        return err_set(e, -EINVAL, "--listen '%s': bad port", s);
    struct addrinfo hints = { .ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) || !ai)
        return err_set(e, -EINVAL, "--listen '%s': unknown host '%s'", s, host);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (ss->ss_family == AF_INET)
        *loopback = (ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    else
        *loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

static char *read_file(const char *path, struct err *e)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        err_set(e, -errno, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf || !n) {
        free(buf);
        err_set(e, -EINVAL, "%s: empty or unreadable", path);
        return NULL;
    }
    return buf;
}

/* A self-signed certificate for a non-loopback --listen without one:
 * STATE/serve/cert.pem and key.pem (made once with openssl, then reused). */
static int self_signed(const char *state, char *cert, char *key, size_t len, struct err *e)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%.4000s/serve", state);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, -errno, "%s: %s", dir, strerror(errno));
    snprintf(cert, len, "%.4000s/cert.pem", dir);
    snprintf(key, len, "%.4000s/key.pem", dir);
    if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        umask(077);
        execlp("openssl", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "825", "-subj",
               "/CN=petrel serve", "-keyout", key, "-out", cert, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        unlink(cert);
        unlink(key);
        return err_set(e, -EIO, "cannot make a self-signed certificate with openssl (Debian: "
                       "apt-get install openssl); or pass --tls-cert and --tls-key");
    }
    printf("petrel serve: made a self-signed certificate %s (browsers will warn; "
           "pass --tls-cert/--tls-key for a real one)\n", cert);
    return 0;
}

int serve_run(const struct serve_opts *o, struct err *e)
{
    struct sockaddr_storage ss;
    bool loopback = false;
    char state[PATH_MAX], token[128];
    if (parse_listen(o->listen, &ss, &loopback, e) < 0 || find_web_dir(o->web_dir, e) < 0)
        return 1;
    find_vendor_dirs();
    if (!o->tls_cert != !o->tls_key)
        return err_set(e, -EINVAL, "--tls-cert and --tls-key go together"), 1;
    if (srv_mhd_load(e) < 0 || vm_ops_init(state, sizeof(state), e) ||
        auth_init(o->password_file, token, sizeof(token), e) < 0)
        return 1;
    const char *cert_file = o->tls_cert, *key_file = o->tls_key;
    char cert_buf[PATH_MAX], key_buf[PATH_MAX];
    if (!loopback && !cert_file) {
        if (self_signed(state, cert_buf, key_buf, sizeof(cert_buf), e) < 0)
            return 1;
        cert_file = cert_buf;
        key_file = key_buf;
    }
    use_tls = cert_file != NULL;
    char *cert = NULL, *key = NULL;
    if (use_tls) {
        if (srv_mhd.is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return err_set(e, -ENOTSUP, "this libmicrohttpd has no TLS support"), 1;
        if (!(cert = read_file(cert_file, e)) || !(key = read_file(key_file, e))) {
            free(cert);
            return 1;
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (rrd_start(o->sample_s, e) < 0)
        return 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_ALLOW_UPGRADE | (use_tls ? MHD_USE_TLS : 0) |
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    struct MHD_OptionItem tls_opts[] = {
        { use_tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, key },
        { MHD_OPTION_END, 0, NULL },
    };
    struct MHD_Daemon *d = srv_mhd.start_daemon(
        flags, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNS,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    if (!d) {
        rrd_stop();
        free(cert);
        free(key);
        return err_set(e, -EADDRINUSE, "cannot listen on %s (in use, or not an address of "
                       "this host)", o->listen), 1;
    }
    const union MHD_DaemonInfo *di = srv_mhd.get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : 0;
    char host[INET6_ADDRSTRLEN + 2] = "";
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
    } else {
        host[0] = '[';
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host + 1, sizeof(host) - 2);
        strcat(host, "]");
    }
    printf("petrel serve: state directory %s, web assets %s\n", state, web_dir);
    if (token[0])
        printf("petrel serve: open %s://%s:%u/?token=%s\n", use_tls ? "https" : "http", host,
               port, token);
    else
        printf("petrel serve: open %s://%s:%u/ (log in with the password of %s)\n",
               use_tls ? "https" : "http", host, port, o->password_file);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    printf("petrel serve: stopping (signal %d); the VMs keep running\n", sig);
    fflush(stdout);
    srv_mhd.stop_daemon(d);
    rrd_stop();
    free(cert);
    free(key);
    return 0;
}
