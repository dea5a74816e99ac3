#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int verbose_level;
/* the log file (log_set_fd), -1 for stderr; lock: lines and swaps */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static bool log_show_level;

int err_vset(struct err *e, int ret, const char *fmt, va_list ap)
{
    if (e)
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return ret;
}

int err_set(struct err *e, int ret, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, ret, fmt, ap);
    va_end(ap);
    return ret;
}

void log_set_verbose(int level) { verbose_level = level; }
int log_verbose(void) { return verbose_level; }

void log_set_fd(int fd, bool show_level)
{
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0 && log_fd != fd)
        close(log_fd);
    log_fd = fd;
    log_show_level = show_level;
    pthread_mutex_unlock(&log_lock);
}

void log_set_show_level(bool show_level)
{
    pthread_mutex_lock(&log_lock);
    log_show_level = show_level;
    pthread_mutex_unlock(&log_lock);
}

static void vlog(const char *tag, const char *level, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    pthread_mutex_lock(&log_lock);
    if (log_fd < 0) {
        /* \r keeps the line readable when the terminal is in raw mode. */
        fprintf(stderr, "petrel: %s%s\r\n", tag, line);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        char out[1200];
        int n = snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s%s%s%s\n",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec, log_show_level ? "[" : "",
                         log_show_level ? level : "", log_show_level ? "] " : "", line);
        if (n > (int)sizeof(out) - 1) {
            n = (int)sizeof(out) - 1;
            out[n - 1] = '\n';
        }
        /* a FIFO nobody reads (O_NONBLOCK) drops the line: never wait */
        ssize_t w = write(log_fd, out, (size_t)n);
        (void)w;
    }
    pthread_mutex_unlock(&log_lock);
}

void log_info(const char *fmt, ...)
{
    if (verbose_level < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", "Info", fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (verbose_level < 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("debug: ", "Debug", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    if (verbose_level < -1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("error: ", "Error", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    if (verbose_level < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", "Warning", fmt, ap);
    va_end(ap);
}

void log_guest(struct log_limit *l, const char *fmt, ...)
{
    uint64_t now = time_now_ns();
    if (now - l->window_start_ns > 1000000000ull) {
        l->window_start_ns = now;
        l->count = 0;
    }
    if (l->count++ >= 10 || verbose_level < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("guest: ", "Warning", fmt, ap);
    va_end(ap);
}

uint64_t time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
