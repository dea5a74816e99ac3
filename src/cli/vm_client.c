/* Talking to a running VMM's API over its unix socket.  See vm_client.h. */
#include "cli/vm_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

void vm_client_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

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
    CURL *c = curl_easy_init();
    if (!c)
        return err_set(e, -ENOMEM, "cannot create an HTTP client");
    char *text = NULL;
    struct curl_slist *hdrs = NULL;
    struct body_buf b = { 0 };
    char url[1024];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text) {
            curl_slist_free_all(hdrs);
            curl_easy_cleanup(c);
            return err_set(e, -ENOMEM, "out of memory");
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    } else if (strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cr = curl_easy_perform(c);
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
            r = err_set(e, -EIO, "%s %s on %s: %s", method, path, sock, curl_easy_strerror(cr));
        free(b.data);
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (resp)
            *resp = b.data ? b.data : strdup("");
        else
            free(b.data);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
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
