/*
 * diskbench: sequential 1 MiB and random 4 KiB read/write throughput of a
 * block device or file, queue depth 1, one thread.  The same source runs
 * inside the riscv64 guest (static, cross-compiled) and on the host, so both
 * sides do exactly the same system calls.  Used by bench/disk-io.sh.
 *
 *   diskbench [options] PATH
 *     -t, --time SECONDS     time per test (default 3)
 *     -m, --max-mib N        also stop a test after N MiB (default: no cap)
 *     -s, --size MIB         use the first MIB MiB of PATH (default: all)
 *     -T, --tests LIST       comma-separated, run in this order (default
 *                            seqwrite,seqread,randwrite,randread)
 *     -b, --buffered         no O_DIRECT (through the page cache)
 *     -S, --seed N           random offsets / data seed (default 1)
 *     --fill                 write pseudo-random data over the region, sync,
 *                            and exit (prepares an image file)
 *     --drop                 fdatasync + POSIX_FADV_DONTNEED, and exit
 *
 * Each test prints one line:
 *   diskbench test=seqread bs=1048576 ops=N bytes=N secs=F mbps=F iops=F sync_secs=F
 * mbps is 10^6 bytes per second; secs excludes the fdatasync that follows
 * each write test (sync_secs), so dirty data never spills into the next test.
 * Random offsets are bs-aligned, uniform over the region (xorshift64*).
 * Exit status 0, or 1 with a message on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEQ_BS (1u << 20)
#define RAND_BS 4096u
#define ALIGN 4096u

struct opts {
    const char *path;
    double time_s;
    uint64_t max_bytes;
    uint64_t size_mib;
    const char *tests;
    int buffered;
    uint64_t seed;
    int fill, drop;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t xs_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void fill_random(unsigned char *buf, size_t len, uint64_t *s)
{
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v = xs_next(s);
        memcpy(buf + i, &v, 8);
    }
}

static int die(const char *what, const char *path)
{
    fprintf(stderr, "diskbench: %s %s: %s\n", what, path ? path : "", strerror(errno));
    return 1;
}

/* Full-length pread/pwrite at off; -1 with errno on error or short transfer. */
static int xfer(int fd, int wr, unsigned char *buf, size_t len, uint64_t off)
{
    ssize_t n = wr ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
    if (n < 0)
        return -1;
    if ((size_t)n != len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static int run_test(int fd, const struct opts *o, const char *name, uint64_t region,
                    unsigned char *buf)
{
    int seq, wr;
    if (!strcmp(name, "seqwrite"))       { seq = 1; wr = 1; }
    else if (!strcmp(name, "seqread"))   { seq = 1; wr = 0; }
    else if (!strcmp(name, "randwrite")) { seq = 0; wr = 1; }
    else if (!strcmp(name, "randread"))  { seq = 0; wr = 0; }
    else {
        fprintf(stderr, "diskbench: unknown test '%s'\n", name);
        return 1;
    }
    size_t bs = seq ? SEQ_BS : RAND_BS;
    uint64_t nblocks = region / bs;
    if (nblocks == 0) {
        fprintf(stderr, "diskbench: region of %" PRIu64 " bytes is smaller than %zu\n",
                region, bs);
        return 1;
    }
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)(seq * 2 + wr) + 1;
    uint64_t data = rng ^ 0xD1B54A32D192ED03ULL;
    if (wr)
        fill_random(buf, bs, &data);

    uint64_t ops = 0, blk = 0;
    double t0 = now(), t = t0, deadline = t0 + o->time_s;
    while (ops == 0 || (t < deadline && ops * bs < o->max_bytes)) {
        uint64_t b = seq ? blk : xs_next(&rng) % nblocks;
        if (wr)   /* distinct data per write, cheap: stamp the first word */
            memcpy(buf, &ops, sizeof ops);
        if (xfer(fd, wr, buf, bs, b * bs) < 0)
            return die(wr ? "write" : "read", o->path);
        ops++;
        if (seq && ++blk == nblocks)
            blk = 0;
        t = now();
    }
    double secs = t - t0, sync_secs = 0;
    if (wr) {
        double s0 = now();
        if (fdatasync(fd) < 0)
            return die("fdatasync", o->path);
        sync_secs = now() - s0;
    }
    uint64_t bytes = ops * bs;
    printf("diskbench test=%s bs=%zu ops=%" PRIu64 " bytes=%" PRIu64
           " secs=%.4f mbps=%.2f iops=%.1f sync_secs=%.4f\n",
           name, bs, ops, bytes, secs, (double)bytes / secs / 1e6,
           (double)ops / secs, sync_secs);
    fflush(stdout);
    return 0;
}

static int do_fill(int fd, const struct opts *o, uint64_t region, unsigned char *buf)
{
    uint64_t s = o->seed ^ 0xA0761D6478BD642FULL;
    for (uint64_t off = 0; off < region; off += SEQ_BS) {
        size_t len = region - off < SEQ_BS ? (size_t)(region - off) : SEQ_BS;
        fill_random(buf, len, &s);
        if (xfer(fd, 1, buf, len, off) < 0)
            return die("write", o->path);
    }
    if (fdatasync(fd) < 0)
        return die("fdatasync", o->path);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: diskbench [-t SECONDS] [-m MAX_MIB] [-s SIZE_MIB] [-T TESTS] [-b] [-S SEED]\n"
            "                 [--fill|--drop] PATH\n"
            "tests: seqwrite,seqread,randwrite,randread (default: all, in that order)\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .time_s = 3, .max_bytes = UINT64_MAX, .tests = "seqwrite,seqread,randwrite,randread",
        .seed = 1,
    };
    int i;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!strcmp(a, "-b") || !strcmp(a, "--buffered")) { o.buffered = 1; continue; }
        if (!strcmp(a, "--fill")) { o.fill = 1; continue; }
        if (!strcmp(a, "--drop")) { o.drop = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        if (!v) { usage(); return 1; }
        i++;
        if (!strcmp(a, "-t") || !strcmp(a, "--time")) {
            char *end;
            o.time_s = strtod(v, &end);
            if (*end || !(o.time_s > 0 && o.time_s < 86400)) { usage(); return 1; }
        } else if (!strcmp(a, "-m") || !strcmp(a, "--max-mib")) {
            if (parse_u64(v, &n) || n == 0 || n > (1ull << 30)) { usage(); return 1; }
            o.max_bytes = n << 20;
        } else if (!strcmp(a, "-s") || !strcmp(a, "--size")) {
            if (parse_u64(v, &n) || n == 0 || n > (1ull << 30)) { usage(); return 1; }
            o.size_mib = n;
        } else if (!strcmp(a, "-S") || !strcmp(a, "--seed")) {
            if (parse_u64(v, &o.seed)) { usage(); return 1; }
        } else if (!strcmp(a, "-T") || !strcmp(a, "--tests")) {
            o.tests = v;
        } else {
            usage();
            return 1;
        }
    }
    if (i != argc - 1) {
        usage();
        return 1;
    }
    o.path = argv[i];

    int flags = (o.fill || o.drop) ? O_RDWR : O_RDWR | (o.buffered ? 0 : O_DIRECT);
    int fd = open(o.path, flags);
    if (fd < 0)
        return die("open", o.path);

    if (o.drop) {
        if (fdatasync(fd) < 0)
            return die("fdatasync", o.path);
        errno = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        if (errno)
            return die("posix_fadvise", o.path);
        return 0;
    }

    struct stat st;
    if (fstat(fd, &st) < 0)
        return die("stat", o.path);
    uint64_t size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0)
        return die("BLKGETSIZE64", o.path);
    if (o.size_mib) {
        if ((o.size_mib << 20) > size) {
            fprintf(stderr, "diskbench: %s has only %" PRIu64 " bytes\n", o.path, size);
            return 1;
        }
        size = o.size_mib << 20;
    }
    uint64_t region = size / ALIGN * ALIGN;

    unsigned char *buf;
    if ((errno = posix_memalign((void **)&buf, ALIGN, SEQ_BS)) != 0)
        return die("posix_memalign", NULL);
    memset(buf, 0, SEQ_BS);

    if (o.fill)
        return do_fill(fd, &o, region, buf);

    printf("diskbench start path=%s region=%" PRIu64 " mode=%s time=%.2f\n", o.path, region,
           o.buffered ? "buffered" : "direct", o.time_s);
    fflush(stdout);
    char *list = strdup(o.tests);
    if (!list)
        return die("strdup", NULL);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        if (run_test(fd, &o, name, region, buf))
            return 1;
    }
    printf("diskbench done\n");
    fflush(stdout);
    free(list);
    free(buf);
    close(fd);
    return 0;
}
