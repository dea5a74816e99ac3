/* vsock-test: a small AF_VSOCK tool for the default guests (busybox has no
 * vsock).  Built static with the cross compiler by images/build-riscv64.sh.
 *
 *   vsock-test listen PORT        accept one connection on PORT, then copy
 *                                 stdin -> socket and socket -> stdout
 *   vsock-test echo PORT [N]      accept connections on PORT and echo each
 *                                 back until its peer closes (N connections,
 *                                 default: forever)
 *   vsock-test connect CID PORT   connect to CID:PORT (2: the host), then
 *                                 copy as `listen` does
 *
 * Copying: end of stdin shuts the socket's write side down; the program
 * exits when the peer closes (after writing out what it sent).  Errors go
 * to stderr with "vsock-test:" and exit status 1. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fail(const char *what)
{
    fprintf(stderr, "vsock-test: %s: %s\n", what, strerror(errno));
    return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int copy(int s)
{
    char buf[16384];
    int in_open = 1;
    for (;;) {
        struct pollfd p[2] = { { .fd = s, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
        if (poll(p, in_open ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return fail("poll");
        }
        if (p[0].revents) {
            ssize_t n = read(s, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return errno == ECONNRESET ? 0 : fail("read from the socket");
            if (n == 0)
                return 0;
            if (write_all(1, buf, (size_t)n) < 0)
                return fail("write to stdout");
        }
        if (in_open && p[1].revents) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                in_open = 0;
                shutdown(s, SHUT_WR);
            } else if (write_all(s, buf, (size_t)n) < 0) {
                return fail("write to the socket");
            }
        }
    }
}

static int echo(int s)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(s, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        if (write_all(s, buf, (size_t)n) < 0)
            return 0;
    }
}

static unsigned parse(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 0);
    if (!*s || *end || v > 0xffffffffUL) {
        fprintf(stderr, "vsock-test: bad number '%s'\n", s);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: vsock-test listen PORT | echo PORT [N] | connect CID PORT\n");
        return 2;
    }
    const char *mode = argv[1];
    int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return fail("socket(AF_VSOCK)");
    struct sockaddr_vm a = { .svm_family = AF_VSOCK };
    if (!strcmp(mode, "connect") && argc == 4) {
        a.svm_cid = parse(argv[2]);
        a.svm_port = parse(argv[3]);
        if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
            return fail("connect");
        return copy(s);
    }
    if ((strcmp(mode, "listen") || argc != 3) && (strcmp(mode, "echo") || argc > 4)) {
        fprintf(stderr, "vsock-test: bad arguments\n");
        return 2;
    }
    a.svm_cid = VMADDR_CID_ANY;
    a.svm_port = parse(argv[2]);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0)
        return fail("bind");
    if (listen(s, 8) < 0)
        return fail("listen");
    fprintf(stderr, "vsock-test: listening on port %u\n", a.svm_port);
    long n = argc == 4 ? (long)parse(argv[3]) : -1;
    for (long i = 0; n < 0 || i < n; i++) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            return fail("accept");
        }
        if (!strcmp(mode, "listen")) {
            close(s);
            return copy(c);
        }
        echo(c);
        close(c);
    }
    return 0;
}
