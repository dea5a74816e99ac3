/* `petrel serve`: an HTTP server (REST API, serial consoles over
 * WebSocket, static web assets) over every VM of the state directory.
 * The contract: docs/serve.md.
 *
 * Threads: serve_run starts libmicrohttpd (a listening thread and one
 * thread per connection), a sampling thread (rrd.c) and one thread per
 * console WebSocket; it returns when SIGINT or SIGTERM arrives.
 *
 * What can fail: the options (bad address, TLS files, password file),
 * loading libmicrohttpd, binding: 1 and a one-line message in e. */
#ifndef PETREL_SERVE_H
#define PETREL_SERVE_H

#include <stdbool.h>

#include "core/log.h"

struct serve_opts {
    const char *listen;         /* "HOST:PORT", "[V6]:PORT" */
    const char *tls_cert, *tls_key;     /* PEM files; NULL: none */
    const char *password_file;  /* NULL: a token is made and printed */
    const char *web_dir;        /* NULL: found next to the binary */
    unsigned sample_s;          /* metrics sampling interval */
};

int serve_run(const struct serve_opts *o, struct err *e);

#endif
