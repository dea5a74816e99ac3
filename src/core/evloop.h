/* The event loop: one per VM, on the thread that calls evloop_run (the
 * VMM's main thread); it owns the sleep, like Redis's ae loop.
 *
 * Design
 * - Descriptors are registered with a handler that runs when the
 *   descriptor is readable: io_uring completion eventfds, KVM ioeventfds,
 *   sockets, the console, the API socket, timers (timerfds) and eventfds
 *   other threads write to wake the loop.
 * - Two kinds of handler.  *Device* handlers (evloop_add) run in device
 *   context: with the loop's device lock held (evloop_set_lock), serialised
 *   with every other piece of device emulation, so device code needs no
 *   locks of its own.  *Control* handlers (evloop_add_ctl) run without it:
 *   the API, signals, lifecycle; they take the lock only to touch devices.
 *   Waiting for guest CPUs to park (pause) must happen without the lock,
 *   since a CPU thread may need it to finish an MMIO exit.
 * - evloop_run waits in epoll_wait and dispatches until evloop_stop.  A
 *   loop that is not run can still be dispatched from another loop
 *   (evloop_fd + evloop_dispatch), as `petrel switch` does.
 * - evloop_busy counts asynchronous operations in flight (block I/O
 *   submitted and not yet completed), for metrics and draining.
 *
 * What can fail: epoll/timerfd creation and epoll_ctl (out of descriptors
 * or memory), reported through struct err.  A handler may delete any
 * handler, itself included: deletion is deferred to the end of the
 * dispatch round. */
#ifndef PETREL_EVLOOP_H
#define PETREL_EVLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

typedef void (*evloop_fn)(void *opaque);

struct evloop;
struct evloop_timer;

struct evloop *evloop_new(struct err *e);
void evloop_free(struct evloop *l);
/* The lock device handlers run under (NULL: none). */
void evloop_set_lock(struct evloop *l, pthread_mutex_t *lock);
/* Run fn(opaque) in device context whenever fd is readable. */
int evloop_add(struct evloop *l, int fd, evloop_fn fn, void *opaque, struct err *e);
/* Run fn(opaque) without the device lock whenever fd is readable. */
int evloop_add_ctl(struct evloop *l, int fd, evloop_fn fn, void *opaque, struct err *e);
/* Stop (false) or resume (true) watching fd, e.g. while a buffer is full. */
void evloop_watch(struct evloop *l, int fd, bool on);
void evloop_del(struct evloop *l, int fd);
/* A descriptor that polls readable while some handler's fd is readable. */
int evloop_fd(const struct evloop *l);
/* Run the handlers of every ready descriptor, waiting up to timeout_ms
 * (0: don't wait, -1: forever) for the first. */
void evloop_dispatch_wait(struct evloop *l, int timeout_ms);
static inline void evloop_dispatch(struct evloop *l) { evloop_dispatch_wait(l, 0); }
/* Dispatch until evloop_stop is called (from a handler). */
void evloop_run(struct evloop *l);
void evloop_stop(struct evloop *l);

/* Timers: fn(opaque) runs on the loop (device context if device is true)
 * when the timer fires.  evloop_timer_set arms it to fire after ns
 * nanoseconds and then every interval_ns (0: once); ns == 0 disarms. */
struct evloop_timer *evloop_timer_new(struct evloop *l, bool device, evloop_fn fn, void *opaque,
                                      struct err *e);
void evloop_timer_set(struct evloop_timer *t, uint64_t ns, uint64_t interval_ns);
void evloop_timer_free(struct evloop_timer *t);

/* Outstanding asynchronous operations (device context only). */
void evloop_busy_inc(struct evloop *l);
void evloop_busy_dec(struct evloop *l);
bool evloop_busy(const struct evloop *l);

#endif
