/* `petrel serve`'s metrics history (Proxmox's rrddata idea): every
 * interval the sampler asks each running VM's VMM for GET /petrel/metrics
 * and keeps the rates derived from it for the last SRV_RRD_SECONDS, in
 * memory (a ring per VM; nothing is written to disk).
 *
 * A sample: t (UTC seconds), cpu (the vCPUs' busy fraction, 0..1 of all
 * of them), mem_bytes (the VMM's RSS), guest_mem_bytes, disk_read_bps,
 * disk_write_bps, net_rx_bps, net_tx_bps.  Rates need two readings of the
 * same VMM: the first sample after a (re)start has none (null).
 *
 * Threads: the sampler's own; readers (request threads) take the mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/vm_client.h"
#include "cli/vm_ops.h"
#include "serve/serve_priv.h"

#define NSER 7
static const char *const ser_names[NSER] = { "cpu", "mem_bytes", "guest_mem_bytes",
                                             "disk_read_bps", "disk_write_bps", "net_rx_bps",
                                             "net_tx_bps" };

struct counters {
    double mono_s;              /* when read */
    long long pid;
    double cpu_ns, rd, wr, rx, tx;
    unsigned vcpus;
};

struct vm_hist {
    char name[80];
    bool seen;                  /* in this round's listing */
    bool have_prev;
    struct counters prev;
    unsigned cap, head, n;      /* ring of cap samples */
    double *t, *v[NSER];        /* v: NaN = not known */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_t thread;
static bool running, stopping;
static unsigned interval;
static struct vm_hist **hist;
static unsigned nhist;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct vm_hist *get_hist(const char *name, bool create)
{
    for (unsigned i = 0; i < nhist; i++)
        if (!strcmp(hist[i]->name, name))
            return hist[i];
    if (!create)
        return NULL;
    struct vm_hist *h = calloc(1, sizeof(*h));
    struct vm_hist **nh = realloc(hist, (nhist + 1) * sizeof(*hist));
    if (!h || !nh) {
        free(h);
        if (nh)
            hist = nh;
        return NULL;
    }
    hist = nh;
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->cap = SRV_RRD_SECONDS / interval + 1;
    h->t = calloc(h->cap, sizeof(double));
    for (int k = 0; k < NSER; k++)
        h->v[k] = calloc(h->cap, sizeof(double));
    hist[nhist++] = h;
    return h;
}

static void free_hist(struct vm_hist *h)
{
    free(h->t);
    for (int k = 0; k < NSER; k++)
        free(h->v[k]);
    free(h);
}

static double sum_field(json_t *arr, const char *key)
{
    double s = 0;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        json_t *v = json_object_get(o, key);
        s += json_is_number(v) ? json_number_value(v) : 0;
    }
    return s;
}

static void add_sample(struct vm_hist *h, json_t *m, long long pid)
{
    if (!h->t)
        return;
    struct counters c = { .mono_s = mono_s(), .pid = pid };
    json_t *vcpus = json_object_get(m, "vcpus");
    c.cpu_ns = sum_field(vcpus, "cpu_time_ns");
    c.vcpus = (unsigned)json_array_size(vcpus);
    c.rd = sum_field(json_object_get(m, "block"), "read_bytes");
    c.wr = sum_field(json_object_get(m, "block"), "write_bytes");
    c.rx = sum_field(json_object_get(m, "net"), "rx_bytes");
    c.tx = sum_field(json_object_get(m, "net"), "tx_bytes");
    json_t *mem = json_object_get(m, "memory");
    double nan = __builtin_nan("");
    double row[NSER];
    for (int k = 0; k < NSER; k++)
        row[k] = nan;
    row[1] = json_number_value(json_object_get(mem, "vmm_rss_bytes"));
    row[2] = json_number_value(json_object_get(mem, "guest_bytes"));
    double dt = c.mono_s - h->prev.mono_s;
    if (h->have_prev && h->prev.pid == pid && dt > 0.1 && c.cpu_ns >= h->prev.cpu_ns) {
        row[0] = (c.cpu_ns - h->prev.cpu_ns) / 1e9 / dt / (c.vcpus ? c.vcpus : 1);
        row[3] = (c.rd - h->prev.rd) / dt;
        row[4] = (c.wr - h->prev.wr) / dt;
        row[5] = (c.rx - h->prev.rx) / dt;
        row[6] = (c.tx - h->prev.tx) / dt;
        for (int k = 3; k < NSER; k++)
            if (row[k] < 0)
                row[k] = nan;
    }
    h->prev = c;
    h->have_prev = true;
    unsigned at = (h->head + h->n) % h->cap;
    if (h->n == h->cap)
        h->head = (h->head + 1) % h->cap;
    else
        h->n++;
    h->t[at] = (double)time(NULL);
    for (int k = 0; k < NSER; k++)
        h->v[k][at] = row[k];
}

static void sample_all(void)
{
    json_t *arr;
    struct err e = { "" };
    if (vm_ops_list(&arr, &e))
        return;
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < nhist; i++)
        hist[i]->seen = false;
    pthread_mutex_unlock(&lock);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *st = json_string_value(json_object_get(o, "state"));
        pthread_mutex_lock(&lock);
        struct vm_hist *h = get_hist(name, true);
        if (h)
            h->seen = true;
        pthread_mutex_unlock(&lock);
        if (!h || !st || (strcmp(st, "running") && strcmp(st, "paused")))
            continue;
        char api[4096], con[4096];
        json_t *m = NULL;
        if (vm_ops_sockets(name, api, con, sizeof(api), &e) ||
            vm_client_get_json(api, "/petrel/metrics", 2000, &m, &e) < 0)
            continue;
        pthread_mutex_lock(&lock);
        if ((h = get_hist(name, false)))
            add_sample(h, m, json_integer_value(json_object_get(o, "pid")));
        pthread_mutex_unlock(&lock);
        json_decref(m);
    }
    json_decref(arr);
    /* forget the VMs that are gone */
    pthread_mutex_lock(&lock);
    for (unsigned k = 0; k < nhist;) {
        if (!hist[k]->seen) {
            free_hist(hist[k]);
            hist[k] = hist[--nhist];
        } else {
            k++;
        }
    }
    pthread_mutex_unlock(&lock);
}

static void *sampler(void *arg)
{
    (void)arg;
    for (;;) {
        vm_ops_reap();
        sample_all();
        pthread_mutex_lock(&lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += interval;
        while (!stopping && pthread_cond_timedwait(&cond, &lock, &until) != ETIMEDOUT)
            ;
        bool stop = stopping;
        pthread_mutex_unlock(&lock);
        if (stop)
            return NULL;
    }
}

int rrd_start(unsigned interval_s, struct err *e)
{
    interval = interval_s ? interval_s : 1;
    int r = pthread_create(&thread, NULL, sampler, NULL);
    if (r)
        return err_set(e, -r, "cannot start the sampling thread: %s", strerror(r));
    running = true;
    return 0;
}

void rrd_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    running = false;
}

static json_t *num(double v)
{
    return v == v ? json_real(v) : json_null();
}

json_t *rrd_series(const char *name, unsigned seconds)
{
    json_t *o = json_pack("{s:i}", "interval_s", (int)interval);
    json_t *t = json_array(), *s[NSER];
    json_object_set_new(o, "t", t);
    for (int k = 0; k < NSER; k++)
        json_object_set_new(o, ser_names[k], s[k] = json_array());
    pthread_mutex_lock(&lock);
    struct vm_hist *h = get_hist(name, false);
    double from = (double)time(NULL) - seconds;
    for (unsigned i = 0; h && i < h->n; i++) {
        unsigned at = (h->head + i) % h->cap;
        if (h->t[at] < from)
            continue;
        json_array_append_new(t, json_integer((json_int_t)h->t[at]));
        for (int k = 0; k < NSER; k++)
            json_array_append_new(s[k], num(h->v[k][at]));
    }
    pthread_mutex_unlock(&lock);
    return o;
}

void rrd_latest(const char *name, json_t *o)
{
    pthread_mutex_lock(&lock);
    struct vm_hist *h = name ? get_hist(name, false) : NULL;
    for (int k = 0; k < NSER; k++) {
        double v = __builtin_nan("");
        if (h && h->n)
            v = h->v[k][(h->head + h->n - 1) % h->cap];
        json_object_set_new(o, ser_names[k], num(v));
    }
    pthread_mutex_unlock(&lock);
}
