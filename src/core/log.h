/* Logging and error messages.
 *
 * Setup paths fill a `struct err` with a one-line message that the CLI
 * prints; run-time problems caused by the guest go through log_guest(),
 * which is rate-limited so a hostile guest cannot flood the host's stderr. */
#ifndef PETREL_LOG_H
#define PETREL_LOG_H

#include <stdarg.h>
#include <stdint.h>

struct err {
    char msg[512];
};

/* Formats into e (if non-NULL) and returns `ret` (a negative errno). */
int err_set(struct err *e, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int err_vset(struct err *e, int ret, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

void log_set_verbose(int level);
int log_verbose(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Guest-caused events: at most a burst of messages, then one per second. */
struct log_limit {
    uint64_t window_start_ns;
    unsigned count;
};
void log_guest(struct log_limit *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

uint64_t time_now_ns(void);

#endif
