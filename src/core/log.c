#include "core/log.h"

#include <stdio.h>
#include <time.h>

static int verbose_level;

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

static void vlog(const char *tag, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    /* \r keeps the line readable when the terminal is in raw mode. */
    fprintf(stderr, "petrel: %s%s\r\n", tag, line);
}

void log_info(const char *fmt, ...)
{
    if (verbose_level < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (verbose_level < 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("debug: ", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("error: ", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}

void log_guest(struct log_limit *l, const char *fmt, ...)
{
    uint64_t now = time_now_ns();
    if (now - l->window_start_ns > 1000000000ull) {
        l->window_start_ns = now;
        l->count = 0;
    }
    if (l->count++ >= 10)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("guest: ", fmt, ap);
    va_end(ap);
}

uint64_t time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
