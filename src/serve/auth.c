/* `petrel serve`'s authentication: a start-up token or a password file,
 * sessions (an HttpOnly, SameSite=Strict cookie), CSRF tokens, and a rate
 * limit on failed logins.  The model: docs/serve.md ("Authentication").
 *
 * Threads: any (a mutex guards the sessions and the rate limit table). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "serve/serve_priv.h"

#define MAX_SESSIONS 64
#define SESSION_S (12 * 3600)   /* a session lasts 12 h */
#define RATE_CLIENTS 256
#define RATE_MAX 5              /* failed logins per client ... */
#define RATE_WINDOW_S 60        /* ... per minute, then 429 */

struct session {
    char id[65], csrf[65];
    time_t expires;
};

struct rate {
    char client[64];
    time_t fails[RATE_MAX];     /* the last failures, a ring */
    unsigned next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char secret[1024];       /* the token or the password */
static struct session sessions[MAX_SESSIONS];
static struct rate rates[RATE_CLIENTS];

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static int random_hex(char *out, size_t bytes)
{
    unsigned char b[64];
    if (bytes > sizeof(b) || getrandom(b, bytes, 0) != (ssize_t)bytes)
        return -1;
    for (size_t i = 0; i < bytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    return 0;
}

bool auth_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb || !la)
        return false;
    unsigned char d = 0;
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

int auth_init(const char *password_file, char *url_token, size_t len, struct err *e)
{
    url_token[0] = 0;
    if (!password_file) {
        if (random_hex(secret, 24) < 0)
            return err_set(e, -EIO, "getrandom: %s", strerror(errno));
        snprintf(url_token, len, "%s", secret);
        return 0;
    }
    FILE *f = fopen(password_file, "re");
    if (!f)
        return err_set(e, -errno, "--password-file %s: %s", password_file, strerror(errno));
    bool ok = fgets(secret, sizeof(secret), f) != NULL;
    fclose(f);
    secret[strcspn(secret, "\r\n")] = 0;
    if (!ok || strlen(secret) < 8)
        return err_set(e, -EINVAL, "--password-file %s: the first line must be a password of "
                       "at least 8 characters", password_file);
    return 0;
}

/* 0: may try; else the seconds until it may (called with lock held). */
static unsigned rate_wait(const char *client, bool failed)
{
    time_t now = now_s();
    struct rate *r = NULL, *free_slot = NULL, *oldest = NULL;
    for (unsigned i = 0; i < RATE_CLIENTS; i++) {
        struct rate *t = &rates[i];
        if (t->client[0] && !strcmp(t->client, client)) {
            r = t;
            break;
        }
        time_t last = t->fails[(t->next + RATE_MAX - 1) % RATE_MAX];
        if (!t->client[0] || now - last > RATE_WINDOW_S)
            free_slot = free_slot ? free_slot : t;
        else if (!oldest || last < oldest->fails[(oldest->next + RATE_MAX - 1) % RATE_MAX])
            oldest = t;
    }
    if (!r && !failed)
        return 0;
    if (!r) {
        r = free_slot ? free_slot : oldest;
        memset(r, 0, sizeof(*r));
        snprintf(r->client, sizeof(r->client), "%s", client);
    }
    if (failed) {
        r->fails[r->next] = now;
        r->next = (r->next + 1) % RATE_MAX;
        return 0;
    }
    time_t first = r->fails[r->next];   /* the oldest of the last RATE_MAX */
    if (first && now - first < RATE_WINDOW_S)
        return (unsigned)(RATE_WINDOW_S - (now - first));
    return 0;
}

/* The secret from a login body: JSON {"token"|"password": ...} or a form
 * token=...|password=... (percent-decoded into buf). */
static const char *body_secret(const struct srv_req *r, char *buf, size_t len)
{
    const char *ct = srv_header(r, "Content-Type");
    if (ct && !strncmp(ct, "application/x-www-form-urlencoded", 33)) {
        const char *p = r->body;
        while (p && *p) {
            const char *eq = strchr(p, '='), *amp = strchr(p, '&');
            if (!amp)
                amp = p + strlen(p);
            if (eq && eq < amp && ((eq - p == 5 && !strncmp(p, "token", 5)) ||
                                   (eq - p == 8 && !strncmp(p, "password", 8)))) {
                size_t o = 0;
                for (const char *q = eq + 1; q < amp && o + 1 < len; q++) {
                    unsigned v;
                    if (*q == '%' && q + 2 < amp && sscanf(q + 1, "%2x", &v) == 1) {
                        buf[o++] = (char)v;
                        q += 2;
                    } else {
                        buf[o++] = *q == '+' ? ' ' : *q;
                    }
                }
                buf[o] = 0;
                return buf;
            }
            p = *amp ? amp + 1 : NULL;
        }
        return NULL;
    }
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    json_t *v = json_object_get(j, "token");
    if (!json_is_string(v))
        v = json_object_get(j, "password");
    const char *s = json_string_value(v);
    if (s)
        snprintf(buf, len, "%s", s);
    json_decref(j);
    return s ? buf : NULL;
}

enum MHD_Result auth_login(struct srv_req *r, const char *given, bool redirect)
{
    char buf[1024];
    if (!given && !(given = body_secret(r, buf, sizeof(buf))))
        return srv_error(r, 400, "expected {\"token\": ...} or {\"password\": ...}");
    pthread_mutex_lock(&lock);
    unsigned wait = rate_wait(r->client, false);
    if (wait) {
        pthread_mutex_unlock(&lock);
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", wait);
        const char *const h[] = { "Retry-After", ra, NULL };
        return srv_send(r, 429, "application/json",
                        "{\"error\":\"too many failed logins; try again later\"}", 50, h);
    }
    if (!auth_equal(given, secret)) {
        rate_wait(r->client, true);
        pthread_mutex_unlock(&lock);
        return srv_error(r, 401, "wrong token or password");
    }
    /* a new session: a free slot, an expired one, or the oldest */
    time_t now = now_s();
    struct session *s = &sessions[0];
    for (unsigned i = 0; i < MAX_SESSIONS; i++) {
        if (sessions[i].expires <= now) {
            s = &sessions[i];
            break;
        }
        if (sessions[i].expires < s->expires)
            s = &sessions[i];
    }
    if (random_hex(s->id, 32) < 0 || random_hex(s->csrf, 32) < 0) {
        s->expires = 0;
        pthread_mutex_unlock(&lock);
        return srv_error(r, 500, "getrandom failed");
    }
    s->expires = now + SESSION_S;
    char cookie[256], csrf_cookie[256], csrf[65];
    snprintf(csrf, sizeof(csrf), "%s", s->csrf);
    snprintf(cookie, sizeof(cookie), "petrel_session=%s; Path=/; Max-Age=%d; HttpOnly; "
             "SameSite=Strict%s", s->id, SESSION_S, r->tls ? "; Secure" : "");
    pthread_mutex_unlock(&lock);
    /* the CSRF token also as a cookie a page's script can read */
    snprintf(csrf_cookie, sizeof(csrf_cookie), "petrel_csrf=%s; Path=/; Max-Age=%d; "
             "SameSite=Strict%s", csrf, SESSION_S, r->tls ? "; Secure" : "");
    if (redirect) {
        const char *const h[] = { "Set-Cookie", cookie, "Set-Cookie", csrf_cookie,
                                  "Location", "/", NULL };
        return srv_send(r, 303, "text/plain; charset=utf-8", "logged in\n", 10, h);
    }
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"csrf\":\"%s\"}", csrf);
    const char *const h[] = { "Set-Cookie", cookie, "Set-Cookie", csrf_cookie, NULL };
    return srv_send(r, 200, "application/json", body, (size_t)n, h);
}

static struct session *find(const char *id)
{
    time_t now = now_s();
    for (unsigned i = 0; id && strlen(id) == 64 && i < MAX_SESSIONS; i++)
        if (sessions[i].expires > now && auth_equal(id, sessions[i].id))
            return &sessions[i];
    return NULL;
}

bool auth_session(struct srv_req *r)
{
    const char *id = srv_cookie(r, "petrel_session");
    pthread_mutex_lock(&lock);
    struct session *s = find(id);
    if (s)
        snprintf(r->csrf, sizeof(r->csrf), "%s", s->csrf);
    pthread_mutex_unlock(&lock);
    return s != NULL;
}

enum MHD_Result auth_logout(struct srv_req *r)
{
    pthread_mutex_lock(&lock);
    struct session *s = find(srv_cookie(r, "petrel_session"));
    if (s)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&lock);
    const char *const h[] = { "Set-Cookie", "petrel_session=; Path=/; Max-Age=0",
                              "Set-Cookie", "petrel_csrf=; Path=/; Max-Age=0", NULL };
    return srv_send(r, 204, NULL, "", 0, h);
}

bool auth_csrf_ok(const struct srv_req *r)
{
    const char *t = srv_header(r, "X-CSRF-Token");
    return t && r->csrf[0] && auth_equal(t, r->csrf);
}

bool auth_origin_ok(const struct srv_req *r)
{
    const char *origin = srv_header(r, "Origin"), *host = srv_header(r, "Host");
    if (!origin || !host)
        return false;
    char want[512];
    snprintf(want, sizeof(want), "%s://%s", r->tls ? "https" : "http", host);
    return !strcmp(origin, want);
}
