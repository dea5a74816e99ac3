#include "core/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EVLOOP_BATCH 32

struct handler {
    int fd;
    evloop_fn fn;
    void *opaque;
    struct handler *next;
};

struct evloop {
    int epfd;
    unsigned busy;
    struct handler *handlers;
};

struct evloop *evloop_new(struct err *e)
{
    struct evloop *l = calloc(1, sizeof(*l));
    if (!l) {
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        err_set(e, -errno, "epoll_create1: %s", strerror(errno));
        free(l);
        return NULL;
    }
    return l;
}

void evloop_free(struct evloop *l)
{
    if (!l)
        return;
    while (l->handlers) {
        struct handler *h = l->handlers;
        l->handlers = h->next;
        free(h);
    }
    close(l->epfd);
    free(l);
}

int evloop_add(struct evloop *l, int fd, evloop_fn fn, void *opaque, struct err *e)
{
    struct handler *h = calloc(1, sizeof(*h));
    if (!h)
        return err_set(e, -ENOMEM, "out of memory");
    *h = (struct handler){ .fd = fd, .fn = fn, .opaque = opaque, .next = l->handlers };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = h };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno;
        free(h);
        return err_set(e, -err, "epoll_ctl(ADD, fd %d): %s", fd, strerror(err));
    }
    l->handlers = h;
    return 0;
}

void evloop_del(struct evloop *l, int fd)
{
    for (struct handler **pp = &l->handlers; *pp; pp = &(*pp)->next)
        if ((*pp)->fd == fd) {
            struct handler *h = *pp;
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
            *pp = h->next;
            free(h);
            return;
        }
}

int evloop_fd(const struct evloop *l)
{
    return l->epfd;
}

void evloop_dispatch(struct evloop *l)
{
    struct epoll_event ev[EVLOOP_BATCH];
    int n = epoll_wait(l->epfd, ev, EVLOOP_BATCH, 0);
    for (int i = 0; i < n; i++) {
        struct handler *h = ev[i].data.ptr;
        h->fn(h->opaque);
    }
}

void evloop_busy_inc(struct evloop *l) { l->busy++; }
void evloop_busy_dec(struct evloop *l) { if (l->busy) l->busy--; }
bool evloop_busy(const struct evloop *l) { return l->busy != 0; }
