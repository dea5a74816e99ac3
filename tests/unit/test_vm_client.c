/* The VMM API client (src/cli/vm_client.c): libcurl loaded with dlopen
 * (found; a missing library and one without curl's functions give one clear
 * error), then requests through it against a canned HTTP server on a unix
 * socket: a JSON answer, a 400 with the VMM's fault_message, a 204, and
 * nobody listening. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/vm_client.h"
#include "unit.h"

static void test_load(void)
{
    struct err e = { "" };
    CHECK(vm_client_check_lib(NULL, &e) == 0, "libcurl loads: %s", e.msg);
    CHECK(vm_client_check_lib(VM_CLIENT_LIBCURL, &e) == 0, "%s loads: %s", VM_CLIENT_LIBCURL,
          e.msg);
    int r = vm_client_check_lib("libpetrel-no-such-lib.so.0", &e);
    CHECK(r == -ELIBACC && strstr(e.msg, "cannot load libpetrel-no-such-lib.so.0") &&
          strstr(e.msg, "apt-get install libcurl4") && !strchr(e.msg, '\n'),
          "a missing library: %d %s", r, e.msg);
    r = vm_client_check_lib("libz.so.1", &e);
    CHECK(r == -ELIBACC && strstr(e.msg, "libz.so.1 has no curl_global_init"),
          "a library that is not libcurl: %d %s", r, e.msg);
}

/* --- a canned server ----------------------------------------------------------- */

struct server {
    int fd;
    const char *answers[4];     /* one per connection, in order */
    unsigned n;
    char last_request[4096];
};

static void *serve(void *opaque)
{
    struct server *s = opaque;
    for (unsigned i = 0; i < s->n; i++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        size_t len = 0;
        ssize_t k;
        /* the request: headers, then the body its Content-Length announces */
        while (len < sizeof(s->last_request) - 1 &&
               (k = read(c, s->last_request + len, sizeof(s->last_request) - 1 - len)) > 0) {
            len += (size_t)k;
            s->last_request[len] = 0;
            char *end = strstr(s->last_request, "\r\n\r\n");
            const char *cl = strcasestr(s->last_request, "Content-Length:");
            if (end && (!cl || cl > end || strlen(end + 4) >= strtoul(cl + 15, NULL, 10)))
                break;
        }
        if (write(c, s->answers[i], strlen(s->answers[i])) < 0)
            perror("write");
        close(c);
    }
    return NULL;
}

static void test_requests(void)
{
    char path[] = "/tmp/petrel-test-vm-client.XXXXXX";
    if (!mkdtemp(path)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char sock[sizeof(path) + 16];
    snprintf(sock, sizeof(sock), "%s/api.sock", path);
    struct server s = {
        .answers = {
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n"
            "Connection: close\r\n\r\n{\"state\": \"Running\"}",
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 30"
            "\r\nConnection: close\r\n\r\n{\"fault_message\": \"bad state\"}",
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        },
        .n = 3,
    };
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    s.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(s.fd >= 0 && bind(s.fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
          listen(s.fd, 4) == 0, "listen on %s", sock);
    pthread_t t;
    pthread_create(&t, NULL, serve, &s);

    struct err e = { "" };
    CHECK(vm_client_init(&e) == 0, "init: %s", e.msg);
    json_t *j = NULL;
    int r = vm_client_get_json(sock, "/petrel/info", 5000, &j, &e);
    CHECK(r == 0 && j && !strcmp(json_string_value(json_object_get(j, "state")), "Running"),
          "GET: %d %s", r, e.msg);
    json_decref(j);
    CHECK(!strncmp(s.last_request, "GET /petrel/info HTTP/1.1", 25), "the request: %.40s",
          s.last_request);
    json_t *body = json_pack("{s:s}", "state", "Paused");
    r = vm_client_call(sock, "PATCH", "/vm", body, 5000, &e);
    CHECK(r == -EPROTO && !strcmp(e.msg, "bad state"), "a 400: %d %s", r, e.msg);
    CHECK(!strncmp(s.last_request, "PATCH /vm HTTP/1.1", 18) &&
          strstr(s.last_request, "{\"state\":\"Paused\"}"), "the PATCH: %s", s.last_request);
    r = vm_client_call(sock, "PUT", "/petrel/stop", body, 5000, &e);
    CHECK(r == 0, "a 204: %d %s", r, e.msg);
    json_decref(body);
    pthread_join(t, NULL);
    close(s.fd);
    unlink(sock);
    r = vm_client_call(sock, "PUT", "/petrel/stop", NULL, 5000, &e);
    CHECK(r == -ECONNREFUSED && strstr(e.msg, "cannot connect to the API socket"),
          "nobody listening: %d %s", r, e.msg);
    rmdir(path);
}

int main(void)
{
    test_load();
    test_requests();
    return unit_done("test_vm_client");
}
