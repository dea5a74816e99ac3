/* Logging and error messages.
 *
 * Setup paths fill a `struct err` with a one-line message that the CLI
 * prints; run-time problems caused by the guest go through log_guest(),
 * which is rate-limited so a hostile guest cannot flood the host's stderr. */
#ifndef PETREL_LOG_H
#define PETREL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

struct err {
    char msg[512];
};

/* Formats into e (if non-NULL) and returns `ret` (a negative errno). */
int err_set(struct err *e, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int err_vset(struct err *e, int ret, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* -2: nothing, -1: errors only, 0 (default): errors and warnings, 1: and
 * info, 2: and debug (Firecracker's Off, Error, Warning, Info, Debug). */
void log_set_verbose(int level);
int log_verbose(void);
/* Write log lines to fd (a file opened for appending, or a FIFO) instead
 * of stderr, each line one write() after a UTC timestamp, with its level
 * ("[Error] ") when show_level is set.  The logger owns fd and closes the
 * previous one; -1 goes back to stderr. */
void log_set_fd(int fd, bool show_level);
void log_set_show_level(bool show_level);
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
