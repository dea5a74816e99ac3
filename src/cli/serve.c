/* `petrel serve`: the command line of the web server (src/serve). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "serve/serve.h"

#define DEFAULT_LISTEN "127.0.0.1:8006"
#define DEFAULT_SAMPLE_S 10u

void cli_serve_usage(void)
{
    printf("usage: petrel serve [--listen ADDR:PORT] [options]\n"
           "\n"
           "Serve a REST API over every VM of the state directory (the VMs of 'petrel vm'),\n"
           "their serial consoles over WebSocket and the web pages of web/, until SIGINT\n"
           "or SIGTERM (the VMs keep running). API reference: docs/serve.md.\n"
           "\n"
           "Every request needs a session, loopback included: at start-up a URL with a\n"
           "random token is printed (open it, or POST /login {\"token\": ...}); with\n"
           "--password-file, log in with that password instead. State-changing requests\n"
           "need the session's CSRF token (X-CSRF-Token header); failed logins are\n"
           "limited to 5 a minute per client address.\n"
           "\n"
           "options:\n"
           "  --listen ADDR:PORT     where to listen (default " DEFAULT_LISTEN "; port 0: any\n"
           "                         free port, printed). An address other than loopback\n"
           "                         needs TLS: --tls-cert/--tls-key, else a self-signed\n"
           "                         certificate is made once in STATE/serve/ (openssl)\n"
           "  --tls-cert FILE        PEM certificate (chain) to serve HTTPS with\n"
           "  --tls-key FILE         its PEM private key\n"
           "  --password-file FILE   log in with the password on its first line (8+\n"
           "                         characters) instead of a start-up token\n"
           "  --web-dir DIR          the web assets (default: web/ found next to the\n"
           "                         binary: ../web, ../share/petrel/web)\n"
           "  --sample-interval S    seconds between metrics samples of each running VM\n"
           "                         (1..300, default %u); the last hour is kept\n"
           "  -h, --help             show this help\n", DEFAULT_SAMPLE_S);
}

int cli_serve(int argc, char **argv)
{
    enum { O_LISTEN = 256, O_CERT, O_KEY, O_PASS, O_WEB, O_SAMPLE };
    static const struct option lo[] = {
        { "listen", required_argument, 0, O_LISTEN },
        { "tls-cert", required_argument, 0, O_CERT },
        { "tls-key", required_argument, 0, O_KEY },
        { "password-file", required_argument, 0, O_PASS },
        { "web-dir", required_argument, 0, O_WEB },
        { "sample-interval", required_argument, 0, O_SAMPLE },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    struct serve_opts o = { .listen = DEFAULT_LISTEN, .sample_s = DEFAULT_SAMPLE_S };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_LISTEN: o.listen = optarg; break;
        case O_CERT: o.tls_cert = optarg; break;
        case O_KEY: o.tls_key = optarg; break;
        case O_PASS: o.password_file = optarg; break;
        case O_WEB: o.web_dir = optarg; break;
        case O_SAMPLE:
            errno = 0;
            o.sample_s = (unsigned)strtoul(optarg, &end, 10);
            if (!isdigit((unsigned char)optarg[0]) || errno || *end || !o.sample_s ||
                o.sample_s > 300) {
                fprintf(stderr, "petrel serve: invalid --sample-interval '%s' (seconds, "
                        "1..300)\n", optarg);
                return 1;
            }
            break;
        case 'h': cli_serve_usage(); return 0;
        case ':':
            fprintf(stderr, "petrel serve: option '%s' needs an argument (try 'petrel serve "
                    "--help')\n", argv[optind - 1]);
            return 1;
        default:
            fprintf(stderr, "petrel serve: unknown option '%s' (try 'petrel serve --help')\n",
                    argv[optind - 1]);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "petrel serve: unexpected argument '%s' (try 'petrel serve --help')\n",
                argv[optind]);
        return 1;
    }
    struct err e = { "" };
    if (serve_run(&o, &e)) {
        fprintf(stderr, "petrel serve: %s\n", e.msg);
        return 1;
    }
    return 0;
}
