/* Talking to a running VMM's API over its unix socket.  See vm_client.h. */
#include "cli/vm_client.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* --- libcurl, loaded on first use ---------------------------------------------- */

/* The libcurl functions the client calls.  The headers give their types;
 * dlsym gives their addresses. */
struct curl_api {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_perform) *easy_perform;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
};

static const struct { const char *name; size_t off; } curl_syms[] = {
    { "curl_global_init", offsetof(struct curl_api, global_init) },
    { "curl_easy_init", offsetof(struct curl_api, easy_init) },
    { "curl_easy_setopt", offsetof(struct curl_api, easy_setopt) },
    { "curl_easy_perform", offsetof(struct curl_api, easy_perform) },
    { "curl_easy_getinfo", offsetof(struct curl_api, easy_getinfo) },
    { "curl_easy_strerror", offsetof(struct curl_api, easy_strerror) },
    { "curl_easy_cleanup", offsetof(struct curl_api, easy_cleanup) },
    { "curl_slist_append", offsetof(struct curl_api, slist_append) },
    { "curl_slist_free_all", offsetof(struct curl_api, slist_free_all) },
};

/* Debian's libcurl4 (OpenSSL), then libcurl3-gnutls: the same API. */
static const char *const curl_sonames[] = { VM_CLIENT_LIBCURL, "libcurl-gnutls.so.4" };

/* dlopen soname (NULL: curl_sonames in order) and fill api.  *handle: for
 * dlclose. */
static int curl_api_load(struct curl_api *api, const char *soname, void **handle,
                         struct err *e)
{
    void *h = NULL;
    const char *name = soname;
    char why[256] = "";         /* why the first one did not load */
    for (unsigned i = 0; !h && i < (soname ? 1 : sizeof(curl_sonames) / sizeof(curl_sonames[0]));
         i++) {
        if (!soname)
            name = curl_sonames[i];
        if (!(h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) && !why[0])
            snprintf(why, sizeof(why), "%s", dlerror());
    }
    if (!h)
        return err_set(e, -ELIBACC, "cannot load %s, needed to talk to the VMM's API: %s "
                       "(Debian: apt-get install libcurl4)", soname ? soname : VM_CLIENT_LIBCURL,
                       why);
    for (unsigned i = 0; i < sizeof(curl_syms) / sizeof(curl_syms[0]); i++) {
        void *f = dlsym(h, curl_syms[i].name);
        if (!f) {
            dlclose(h);
            return err_set(e, -ELIBACC, "%s has no %s; not a usable libcurl", name,
                           curl_syms[i].name);
        }
        memcpy((char *)api + curl_syms[i].off, &f, sizeof(f));
    }
    *handle = h;
    return 0;
}

int vm_client_check_lib(const char *soname, struct err *e)
{
    struct curl_api api;
    void *h;
    int r = curl_api_load(&api, soname, &h, e);
    if (r == 0)
        dlclose(h);
    return r;
}

/* The process's libcurl: loaded and initialised once (pthread_once), then
 * only read; never unloaded. */
static struct curl_api curl_loaded;
static struct err curl_load_err;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_load_once(void)
{
    void *h;
    if (curl_api_load(&curl_loaded, NULL, &h, &curl_load_err) < 0)
        return;
    CURLcode cr = curl_loaded.global_init(CURL_GLOBAL_DEFAULT);
    if (cr != CURLE_OK) {
        err_set(&curl_load_err, -ELIBACC, "cannot initialise libcurl: %s",
                curl_loaded.easy_strerror(cr));
        curl_loaded.easy_init = NULL;
    }
}

/* The loaded libcurl, or NULL with the reason in e. */
static const struct curl_api *curl_get(struct err *e)
{
    pthread_once(&curl_once, curl_load_once);
    if (!curl_loaded.easy_init) {
        err_set(e, -ELIBACC, "%s", curl_load_err.msg);
        return NULL;
    }
    return &curl_loaded;
}

int vm_client_init(struct err *e)
{
    return curl_get(e) ? 0 : -ELIBACC;
}

/* --- requests ------------------------------------------------------------------ */

struct body_buf {
    char *data;
    size_t len;
    bool overflow;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct body_buf *b = opaque;
    size_t n = size * nmemb;
    if (b->len + n > VM_CLIENT_MAX_BODY) {
        b->overflow = true;
        return 0;
    }
    char *nd = realloc(b->data, b->len + n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, ptr, n);
    b->data = nd;
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

int vm_client_request(const char *sock, const char *method, const char *path,
                      const json_t *body, long timeout_ms, long *status, char **resp,
                      struct err *e)
{
    *status = 0;
    if (resp)
        *resp = NULL;
    const struct curl_api *cu = curl_get(e);
    if (!cu)
        return -ELIBACC;
    CURL *c = cu->easy_init();
    if (!c)
        return err_set(e, -ENOMEM, "cannot create an HTTP client");
    char *text = NULL;
    struct curl_slist *hdrs = NULL;
    struct body_buf b = { 0 };
    char url[1024];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    cu->easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    cu->easy_setopt(c, CURLOPT_URL, url);
    cu->easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    cu->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    cu->easy_setopt(c, CURLOPT_WRITEDATA, &b);
    hdrs = cu->slist_append(hdrs, "Accept: application/json");
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text) {
            cu->slist_free_all(hdrs);
            cu->easy_cleanup(c);
            return err_set(e, -ENOMEM, "out of memory");
        }
        hdrs = cu->slist_append(hdrs, "Content-Type: application/json");
        cu->easy_setopt(c, CURLOPT_POSTFIELDS, text);
    } else if (strcmp(method, "GET")) {
        cu->easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    cu->easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cr = cu->easy_perform(c);
    int r = 0;
    if (cr != CURLE_OK) {
        if (b.overflow)
            r = err_set(e, -EFBIG, "%s %s: the answer is over %u bytes", method, path,
                        VM_CLIENT_MAX_BODY);
        else if (cr == CURLE_OPERATION_TIMEDOUT)
            r = err_set(e, -ETIMEDOUT, "%s %s: no answer from %s within %ld ms", method, path,
                        sock, timeout_ms);
        else if (cr == CURLE_COULDNT_CONNECT)
            r = err_set(e, -ECONNREFUSED, "cannot connect to the API socket %s", sock);
        else
            r = err_set(e, -EIO, "%s %s on %s: %s", method, path, sock, cu->easy_strerror(cr));
        free(b.data);
    } else {
        cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (resp)
            *resp = b.data ? b.data : strdup("");
        else
            free(b.data);
    }
    cu->slist_free_all(hdrs);
    cu->easy_cleanup(c);
    free(text);
    return r;
}

/* The error for a non-2xx answer: the fault_message when there is one. */
static int http_error(const char *method, const char *path, long status, const char *resp,
                      struct err *e)
{
    json_t *j = resp ? json_loads(resp, 0, NULL) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "fault_message")) : NULL;
    int r;
    if (msg)
        r = err_set(e, -EPROTO, "%s", msg);
    else
        r = err_set(e, -EPROTO, "%s %s: HTTP status %ld%s%.200s", method, path, status,
                    resp && *resp ? ": " : "", resp ? resp : "");
    json_decref(j);
    return r;
}

int vm_client_get_json(const char *sock, const char *path, long timeout_ms, json_t **out,
                       struct err *e)
{
    long status;
    char *resp;
    *out = NULL;
    int r = vm_client_request(sock, "GET", path, NULL, timeout_ms, &status, &resp, e);
    if (r < 0)
        return r;
    if (status != 200) {
        r = http_error("GET", path, status, resp, e);
        free(resp);
        return r;
    }
    json_error_t je;
    *out = json_loads(resp, 0, &je);
    free(resp);
    if (!*out)
        return err_set(e, -EBADMSG, "GET %s: the answer is not JSON: %s", path, je.text);
    return 0;
}

int vm_client_call(const char *sock, const char *method, const char *path, const json_t *body,
                   long timeout_ms, struct err *e)
{
    long status;
    char *resp;
    int r = vm_client_request(sock, method, path, body, timeout_ms, &status, &resp, e);
    if (r < 0)
        return r;
    if (status < 200 || status > 299)
        r = http_error(method, path, status, resp, e);
    free(resp);
    return r;
}
