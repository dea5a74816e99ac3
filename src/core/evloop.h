/* The device event loop: file descriptors whose readiness runs device code.
 *
 * Design
 * - One loop per VM (vm->loop).  A device registers a file descriptor (an
 *   io_uring completion eventfd, a KVM ioeventfd, a socket) with a handler;
 *   the handler runs when the descriptor is readable.
 * - Handlers always run in *device context*: serialised with every other
 *   piece of device emulation, so device code needs no locks of its own.
 *   On the rv64 engine that is the hart thread (harts and devices share it:
 *   vm_poll dispatches between slices, and every slice while async work is
 *   outstanding); on the kvm engine it is the I/O thread, which dispatches
 *   with the device lock held while the vCPU threads keep running.
 * - The loop never waits by itself: its epoll descriptor (evloop_fd) is
 *   waited on together with the console's input by vm_poll/console_wait,
 *   then evloop_dispatch runs what is ready without blocking.
 * - evloop_busy counts asynchronous operations in flight (block I/O
 *   submitted and not yet completed).  A busy-running engine uses it to
 *   dispatch more often than its housekeeping interval, so completions are
 *   not left waiting behind a running guest.
 *
 * What can fail: epoll_create/epoll_ctl (out of descriptors or memory),
 * reported through struct err.  Handlers are only removed at teardown, never
 * from inside a handler. */
#ifndef PETREL_EVLOOP_H
#define PETREL_EVLOOP_H

#include <stdbool.h>

#include "core/log.h"

typedef void (*evloop_fn)(void *opaque);

struct evloop;

struct evloop *evloop_new(struct err *e);
void evloop_free(struct evloop *l);
/* Run fn(opaque) in device context whenever fd is readable. */
int evloop_add(struct evloop *l, int fd, evloop_fn fn, void *opaque, struct err *e);
void evloop_del(struct evloop *l, int fd);
/* A descriptor that polls readable while some handler's fd is readable. */
int evloop_fd(const struct evloop *l);
/* Run the handlers of every ready descriptor, without waiting.  Device
 * context only. */
void evloop_dispatch(struct evloop *l);
/* Outstanding asynchronous operations (device context only). */
void evloop_busy_inc(struct evloop *l);
void evloop_busy_dec(struct evloop *l);
bool evloop_busy(const struct evloop *l);

#endif
