/* qimg_export (block/qcow2_export.h): an image at an internal snapshot
 * copied into a new qcow2 on the same backing file, checked against
 * qemu-img: the export's guest content equals `qemu-img convert -l
 * snapshot.name=TAG` of the source, its own clusters are exactly the
 * snapshot's (zero clusters stay zero clusters, the base is not flattened:
 * `qemu-img map`), `qemu-img check` finds it clean; the source may be held
 * by a writer (exclusive lock) meanwhile and keep writing; images made by
 * qemu-img (compressed clusters, qemu's snapshots) export too; errors. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "unit.h"
#include "block/qcow2.h"
#include "block/qcow2_export.h"

static char dir[] = "/tmp/petrel-export-XXXXXX";

#define MIB (1ull << 20)
#define KIB (1ull << 10)

static const char *path(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
    return buf[k];
}

static void fill(uint8_t *p, uint64_t n, uint64_t seed)
{
    for (uint64_t i = 0; i < n; i++)
        p[i] = (uint8_t)((seed * 131 + i * 7 + (i >> 9)) ^ (seed >> 3));
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int r = system(cmd);
    if (r != 0)
        printf("command failed (%d): %s\n", r, cmd);
    return r;
}

/* stdout of a command, parsed as JSON (NULL on failure). */
static json_t *sh_json(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    json_error_t je;
    json_t *j = json_loadf(f, 0, &je);
    pclose(f);
    if (!j)
        printf("%s: no JSON: %s\n", cmd, je.text);
    return j;
}

static void wr(struct qimg *q, uint64_t off, uint64_t len, uint64_t seed)
{
    uint8_t *b = malloc(len);
    fill(b, len, seed);
    int r = qimg_pwrite(q, b, len, off);
    CHECK(r == 0, "write %llu+%llu: %s", (unsigned long long)off, (unsigned long long)len,
          q->err.msg);
    free(b);
}

static struct qimg *mk(const char *name, uint64_t size, uint32_t cb, const char *backing,
                       const char *bfmt)
{
    struct err e = { "" };
    struct qimg_create_opts o = { .fmt = "qcow2", .size = size, .cluster_bits = cb,
                                  .backing = backing, .backing_fmt = bfmt };
    int r = qimg_create(path(name), &o, &e);
    CHECK(r == 0, "create %s: %s", name, e.msg);
    struct qimg *q = NULL;
    r = qimg_open(&q, path(name), NULL, false, &e);
    CHECK(r == 0, "open %s: %s", name, e.msg);
    return q;
}

/* The guest content of src at snap (qemu-img) equals the export's. */
static void same_content(const char *src, const char *snap, const char *exp, const char *what)
{
    char a[300], b[300];
    snprintf(a, sizeof(a), "%s", path("a.raw"));
    snprintf(b, sizeof(b), "%s", path("b.raw"));
    int r1 = snap ? sh("qemu-img convert -U -f qcow2 -l snapshot.name=%s -O raw %s %s", snap,
                       src, a)
                  : sh("qemu-img convert -U -f qcow2 -O raw %s %s", src, a);
    int r2 = sh("qemu-img convert -U -f qcow2 -O raw %s %s", exp, b);
    CHECK(r1 == 0 && r2 == 0, "%s: qemu-img convert", what);
    CHECK(sh("cmp -s %s %s", a, b) == 0, "%s: the export's content differs from %s at %s", what,
          src, snap ? snap : "its current state");
    unlink(a);
    unlink(b);
}

static void check_clean(const char *img, const char *what)
{
    CHECK(sh("qemu-img check -U -q %s", img) == 0, "%s: qemu-img check %s", what, img);
}

/* qemu-img map of the export: [start, len) ranges with what each is. */
struct ext {
    uint64_t start, len;
    bool data, zero, present;
    int depth;
};

static unsigned map_of(const char *img, struct ext *x, unsigned max)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "qemu-img map -U --output=json %s", img);
    json_t *j = sh_json(cmd);
    unsigned n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) {
        if (n == max)
            break;
        x[n].start = (uint64_t)json_integer_value(json_object_get(v, "start"));
        x[n].len = (uint64_t)json_integer_value(json_object_get(v, "length"));
        x[n].data = json_is_true(json_object_get(v, "data"));
        x[n].zero = json_is_true(json_object_get(v, "zero"));
        x[n].present = json_is_true(json_object_get(v, "present"));
        x[n].depth = (int)json_integer_value(json_object_get(v, "depth"));
        n++;
    }
    json_decref(j);
    return n;
}

/* What the export holds at off (the map entry covering it). */
static const struct ext *at(const struct ext *x, unsigned n, uint64_t off)
{
    for (unsigned i = 0; i < n; i++)
        if (off >= x[i].start && off < x[i].start + x[i].len)
            return &x[i];
    return NULL;
}

/* A raw base, a qcow2 overlay on it (relative backing name, larger than the
 * base), data, zeroes and partial writes; snapshot s1; then the writer keeps
 * the image open (exclusive lock) and changes what s1 had, takes s2, goes
 * on; exports of s1 and s2 made meanwhile, without the lock. */
static void test_overlay(void)
{
    struct err e = { "" };
    int fd = open(path("base.raw"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint8_t *b = malloc(4 * MIB);
    fill(b, 4 * MIB, 77);
    CHECK(fd >= 0 && write(fd, b, 4 * MIB) == (ssize_t)(4 * MIB), "base.raw");
    close(fd);
    free(b);
    CHECK(chdir(dir) == 0, "chdir");
    struct qimg *q = mk("ov.qcow2", 8 * MIB, 16, "base.raw", "raw");   /* relative name */
    CHECK(chdir("/") == 0, "chdir /");
    if (!q)
        return;
    wr(q, 0, 64 * KIB, 1);                  /* one whole cluster over the base */
    wr(q, 200 * KIB, 3 * KIB, 2);           /* partial cluster: the rest comes from the base */
    wr(q, 5 * MIB, 300 * KIB, 3);           /* past the base's end */
    int r = qimg_write_zeroes(q, 1 * MIB, 256 * KIB, true);    /* zero clusters over the base */
    CHECK(r == 0, "write_zeroes: %s", q->err.msg);
    r = qimg_write_zeroes(q, 3 * MIB + 64 * KIB, 64 * KIB, false);
    CHECK(r == 0, "write_zeroes: %s", q->err.msg);
    r = qimg_snapshot_create(q, "s1", &e);
    CHECK(r == 0, "snapshot s1: %s", e.msg);
    /* the writer goes on: overwrite, discard and zero what s1 holds */
    wr(q, 0, 128 * KIB, 11);
    wr(q, 1 * MIB, 64 * KIB, 12);
    r = qimg_discard(q, 5 * MIB, 320 * KIB);
    CHECK(r == 0, "discard: %s", q->err.msg);
    r = qimg_snapshot_create(q, "s2", &e);
    CHECK(r == 0, "snapshot s2: %s", e.msg);
    wr(q, 6 * MIB, 64 * KIB, 13);

    /* the writer holds the image (exclusive OFD lock): a locked open fails */
    struct qimg *v = NULL;
    r = qimg_open_snapshot(&v, path("ov.qcow2"), "s1", 0, &e);
    CHECK(r == -EBUSY, "a locked open of a written image fails: %d %s", r, e.msg);
    qimg_close(v);
    r = qimg_export(path("ov.qcow2"), NULL, path("now.qcow2"), QIMG_EXPORT_NO_LOCK, NULL, &e);
    CHECK(r == -EBUSY, "the current state of a written image is never read unlocked: %d", r);

    struct qimg_export_stats st;
    r = qimg_export(path("ov.qcow2"), "s1", path("s1.qcow2"), QIMG_EXPORT_NO_LOCK, &st, &e);
    CHECK(r == 0, "export s1 while the writer holds the image: %s", e.msg);
    EQ(st.size, 8 * MIB);
    /* 0-64K, 192K-256K (partial write), 5M..5M+320K (5 clusters) */
    EQ(st.data_clusters, 1 + 1 + 5);
    EQ(st.zero_bytes, 256 * KIB + 64 * KIB);
    /* the writer writes on while a second export runs */
    wr(q, 7 * MIB, 64 * KIB, 14);
    r = qimg_export(path("ov.qcow2"), "2", path("s2.qcow2"), QIMG_EXPORT_NO_LOCK, NULL, &e);
    CHECK(r == 0, "export s2 by ID: %s", e.msg);
    r = qimg_flush(q);
    CHECK(r == 0, "flush");
    r = qimg_export(path("ov.qcow2"), "nope", path("x.qcow2"), QIMG_EXPORT_NO_LOCK, NULL, &e);
    CHECK(r == -ENOENT && strstr(e.msg, "no snapshot with ID or name 'nope'"), "%d %s", r,
          e.msg);
    /* the writer is done (qemu-img cannot read what it holds, even with -U) */
    qimg_close(q);

    same_content(path("ov.qcow2"), "s1", path("s1.qcow2"), "s1");
    same_content(path("ov.qcow2"), "s2", path("s2.qcow2"), "s2");
    check_clean(path("s1.qcow2"), "s1");
    check_clean(path("s2.qcow2"), "s2");

    /* the export's own clusters: the snapshot's, nothing of the base */
    struct ext x[64];
    unsigned n = map_of(path("s1.qcow2"), x, 64);
    CHECK(n > 0, "qemu-img map");
    const struct ext *p = at(x, n, 0);
    CHECK(p && p->data && p->depth == 0, "0: data of its own");
    p = at(x, n, 128 * KIB);
    CHECK(p && p->data && p->depth == 1, "128K: the base's (depth 1), not copied");
    p = at(x, n, 200 * KIB);
    CHECK(p && p->data && p->depth == 0, "200K: the partial write's cluster");
    p = at(x, n, 1 * MIB + 128 * KIB);
    CHECK(p && p->zero && !p->data && p->depth == 0, "1M+128K: a zero cluster over the base");
    p = at(x, n, 3 * MIB + 64 * KIB);
    CHECK(p && p->zero && !p->data && p->depth == 0, "3M+64K: a zero cluster");
    p = at(x, n, 4 * MIB + 64 * KIB);
    CHECK(p && !p->data && !p->present, "4M+64K: past the base, unallocated");
    p = at(x, n, 6 * MIB);
    CHECK(p && !p->data && !p->present, "6M: written after s1, not in the export");
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "qemu-img info -U --output=json %s", path("s1.qcow2"));
    json_t *info = sh_json(cmd);
    const char *bf = json_string_value(json_object_get(info, "backing-filename"));
    const char *bff = json_string_value(json_object_get(info, "backing-filename-format"));
    CHECK(bf && !strcmp(bf, path("base.raw")), "the backing file, absolute: %s", bf ? bf : "-");
    CHECK(bff && !strcmp(bff, "raw"), "the backing format: %s", bff ? bff : "-");
    EQ(json_integer_value(json_object_get(info, "cluster-size")), 64 * KIB);
    json_decref(info);
    /* petrel's own reader agrees with qemu-img */
    r = qimg_open_snapshot(&v, path("s1.qcow2"), NULL, 0, &e);
    CHECK(r == 0 && v->size == 8 * MIB, "open the export: %s", e.msg);
    qimg_close(v);

    /* errors */
    r = qimg_export(path("base.raw"), "s1", path("x.qcow2"), QIMG_EXPORT_NO_LOCK, NULL, &e);
    CHECK(r == -ENOTSUP && strstr(e.msg, "not a qcow2 image"), "raw source: %d %s", r, e.msg);
    r = qimg_export(path("missing.qcow2"), "s1", path("x.qcow2"), 0, NULL, &e);
    CHECK(r == -ENOENT, "missing source: %d", r);

    /* the writer gone: the current state exports (with the shared lock) */
    r = qimg_export(path("ov.qcow2"), NULL, path("now.qcow2"), 0, &st, &e);
    CHECK(r == 0, "export the current state: %s", e.msg);
    same_content(path("ov.qcow2"), NULL, path("now.qcow2"), "now");
    check_clean(path("now.qcow2"), "now");
    check_clean(path("ov.qcow2"), "the source");
}

/* Images qemu-img made: compressed clusters on a qcow2 base, a snapshot
 * qemu-img took; and an image without a backing file. */
static void test_qemu_made(void)
{
    struct err e = { "" };
    const char *raw = path("data.raw");
    int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint8_t *b = malloc(2 * MIB);
    fill(b, 2 * MIB, 5);
    memset(b + 512 * KIB, 0, 256 * KIB);
    CHECK(fd >= 0 && write(fd, b, 2 * MIB) == (ssize_t)(2 * MIB), "data.raw");
    close(fd);
    free(b);
    CHECK(sh("qemu-img create -q -f qcow2 %s 2M", path("qbase.qcow2")) == 0, "qbase");
    CHECK(sh("qemu-img convert -c -O qcow2 -B %s -F qcow2 %s %s", path("qbase.qcow2"), raw,
             path("comp.qcow2")) == 0, "compressed overlay");
    CHECK(sh("qemu-img snapshot -c qsnap %s", path("comp.qcow2")) == 0, "qemu snapshot");
    CHECK(sh("qemu-io -f qcow2 -c 'write -P 0x5a 0 128k' %s >/dev/null", path("comp.qcow2"))
          == 0, "write after the snapshot");
    struct qimg_export_stats st;
    int r = qimg_export(path("comp.qcow2"), "qsnap", path("qexp.qcow2"), 0, &st, &e);
    CHECK(r == 0, "export a compressed image: %s", e.msg);
    CHECK(st.data_bytes > 0, "data copied");
    same_content(path("comp.qcow2"), "qsnap", path("qexp.qcow2"), "compressed");
    check_clean(path("qexp.qcow2"), "compressed");

    /* no backing file: zeroes read as zeroes without zero clusters */
    struct qimg *q = NULL;
    struct qimg_create_opts o = { .fmt = "qcow2", .size = 3 * MIB + 512, .cluster_bits = 12 };
    r = qimg_create(path("plain.qcow2"), &o, &e);
    CHECK(r == 0 && qimg_open(&q, path("plain.qcow2"), NULL, false, &e) == 0, "plain: %s",
          e.msg);
    if (!q)
        return;
    wr(q, 0, 10000, 21);
    wr(q, 3 * MIB, 512, 22);                /* the last, partial cluster */
    r = qimg_write_zeroes(q, 8 * KIB, 16 * KIB, false);
    CHECK(r == 0, "zeroes");
    r = qimg_snapshot_create(q, "p", &e);
    CHECK(r == 0, "snapshot p: %s", e.msg);
    wr(q, 0, 4 * KIB, 23);
    r = qimg_export(path("plain.qcow2"), "p", path("pexp.qcow2"), QIMG_EXPORT_NO_LOCK, &st, &e);
    CHECK(r == 0, "export plain: %s", e.msg);
    EQ(st.size, 3 * MIB + 512);
    qimg_close(q);
    same_content(path("plain.qcow2"), "p", path("pexp.qcow2"), "plain");
    check_clean(path("pexp.qcow2"), "plain");
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "qemu-img info -U --output=json %s", path("pexp.qcow2"));
    json_t *info = sh_json(cmd);
    CHECK(info && !json_object_get(info, "backing-filename"), "no backing file");
    EQ(json_integer_value(json_object_get(info, "cluster-size")), 4 * KIB);
    json_decref(info);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (system("qemu-img --version >/dev/null 2>&1") != 0) {
        printf("qemu-img is missing: install qemu-utils (scripts/deps.sh test)\n");
        return 1;
    }
    test_overlay();
    test_qemu_made();
    if (!getenv("KEEP")) sh("rm -rf %s", dir);
    return unit_done("test_qcow2_export");
}
