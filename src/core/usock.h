/* A listening unix stream socket at a path its owner removes again.
 *
 * usock_listen binds and listens at path: a stale socket file left there
 * (nobody accepts on it, e.g. a killed petrel's) is replaced, a live one or
 * any other kind of file is an error, naming `who` (the device) and the
 * path.  usock_unlink removes the path at teardown only while it is still
 * the socket this process bound (same device and inode), so a socket that
 * someone else has put there since stays. */
#ifndef PETREL_USOCK_H
#define PETREL_USOCK_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/log.h"

struct usock_id {
    bool bound;                 /* we created the file at path */
    dev_t dev;
    ino_t ino;
};

/* The listening socket (non-blocking, close-on-exec), or a negative errno
 * with a message; path must fit in sockaddr_un (the caller checks). */
int usock_listen(const char *who, const char *path, int backlog, struct usock_id *id,
                 struct err *e);
void usock_unlink(const char *path, const struct usock_id *id);

#endif
