#include "core/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define EVLOOP_BATCH 32

struct handler {
    int fd;
    bool device;        /* run with the device lock held */
    bool dead;          /* deleted during a dispatch round: freed after it */
    evloop_fn fn;
    void *opaque;
    struct handler *next;
};

struct evloop {
    int epfd;
    unsigned busy;
    bool stop;
    unsigned dispatching;       /* nesting depth of dispatch rounds */
    pthread_mutex_t *lock;
    struct handler *handlers;
};

struct evloop_timer {
    struct evloop *l;
    int fd;
    evloop_fn fn;
    void *opaque;
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

void evloop_set_lock(struct evloop *l, pthread_mutex_t *lock)
{
    l->lock = lock;
}

static int add(struct evloop *l, int fd, bool device, evloop_fn fn, void *opaque, struct err *e)
{
    struct handler *h = calloc(1, sizeof(*h));
    if (!h)
        return err_set(e, -ENOMEM, "out of memory");
    *h = (struct handler){ .fd = fd, .device = device, .fn = fn, .opaque = opaque,
                           .next = l->handlers };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = h };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno;
        free(h);
        return err_set(e, -err, "epoll_ctl(ADD, fd %d): %s", fd, strerror(err));
    }
    l->handlers = h;
    return 0;
}

int evloop_add(struct evloop *l, int fd, evloop_fn fn, void *opaque, struct err *e)
{
    return add(l, fd, true, fn, opaque, e);
}

int evloop_add_ctl(struct evloop *l, int fd, evloop_fn fn, void *opaque, struct err *e)
{
    return add(l, fd, false, fn, opaque, e);
}

static struct handler *find(struct evloop *l, int fd)
{
    for (struct handler *h = l->handlers; h; h = h->next)
        if (h->fd == fd && !h->dead)
            return h;
    return NULL;
}

void evloop_watch(struct evloop *l, int fd, bool on)
{
    struct handler *h = find(l, fd);
    if (!h)
        return;
    struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = h };
    epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void reap(struct evloop *l)
{
    for (struct handler **pp = &l->handlers; *pp;) {
        struct handler *h = *pp;
        if (h->dead) {
            *pp = h->next;
            free(h);
        } else {
            pp = &h->next;
        }
    }
}

void evloop_del(struct evloop *l, int fd)
{
    struct handler *h = find(l, fd);
    if (!h)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    h->dead = true;
    if (!l->dispatching)
        reap(l);
}

int evloop_fd(const struct evloop *l)
{
    return l->epfd;
}

void evloop_dispatch_wait(struct evloop *l, int timeout_ms)
{
    struct epoll_event ev[EVLOOP_BATCH];
    int n = epoll_wait(l->epfd, ev, EVLOOP_BATCH, timeout_ms);
    l->dispatching++;
    for (int i = 0; i < n; i++) {
        struct handler *h = ev[i].data.ptr;
        if (h->dead)
            continue;
        if (h->device && l->lock) {
            pthread_mutex_lock(l->lock);
            h->fn(h->opaque);
            pthread_mutex_unlock(l->lock);
        } else {
            h->fn(h->opaque);
        }
    }
    if (!--l->dispatching)
        reap(l);
}

void evloop_run(struct evloop *l)
{
    l->stop = false;
    while (!l->stop)
        evloop_dispatch_wait(l, -1);
}

void evloop_stop(struct evloop *l)
{
    l->stop = true;
}

static void timer_fire(void *opaque)
{
    struct evloop_timer *t = opaque;
    uint64_t n;
    if (read(t->fd, &n, sizeof(n)) != sizeof(n))
        return;         /* disarmed or re-armed since it became readable */
    t->fn(t->opaque);
}

struct evloop_timer *evloop_timer_new(struct evloop *l, bool device, evloop_fn fn, void *opaque,
                                      struct err *e)
{
    struct evloop_timer *t = calloc(1, sizeof(*t));
    if (!t) {
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    *t = (struct evloop_timer){ .l = l, .fn = fn, .opaque = opaque };
    t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t->fd < 0) {
        err_set(e, -errno, "timerfd_create: %s", strerror(errno));
        free(t);
        return NULL;
    }
    if (add(l, t->fd, device, timer_fire, t, e) < 0) {
        close(t->fd);
        free(t);
        return NULL;
    }
    return t;
}

void evloop_timer_set(struct evloop_timer *t, uint64_t ns, uint64_t interval_ns)
{
    struct itimerspec its = {
        .it_value = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) },
        .it_interval = { (time_t)(interval_ns / 1000000000u), (long)(interval_ns % 1000000000u) },
    };
    timerfd_settime(t->fd, 0, &its, NULL);
}

void evloop_timer_free(struct evloop_timer *t)
{
    if (!t)
        return;
    evloop_del(t->l, t->fd);
    close(t->fd);
    free(t);
}

void evloop_busy_inc(struct evloop *l) { l->busy++; }
void evloop_busy_dec(struct evloop *l) { if (l->busy) l->busy--; }
bool evloop_busy(const struct evloop *l) { return l->busy != 0; }
