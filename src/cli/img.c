/* `petrel img`: disk image tools shaped like qemu-img (create, info, check,
 * convert, map, snapshot, resize, rebase, commit) over the synchronous
 * qcow2/raw core (block/qcow2.h), plus hidden `bench-write` (the
 * crash-consistency test's writer) and `bench` (qemu-io-like commands from
 * stdin, timed: bench/qcow2-io.sh). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "cli/cli.h"
#include "core/opts.h"

void cli_img_usage(void)
{
    printf(
        "usage: petrel img <command> [options]\n"
        "\n"
        "Disk image tools (raw and qcow2; qcow2 v3 read/write, v2 read/write).\n"
        "\n"
        "commands:\n"
        "  create [-f FMT] [-b BACKING [-F BACKING_FMT]] [-o OPTIONS] FILE [SIZE]\n"
        "         create an image (FMT qcow2 (default) or raw; SIZE with K/M/G/T\n"
        "         suffixes, bytes when bare; defaults to the backing file's size).\n"
        "         OPTIONS: cluster_size=BYTES, compat=0.10|1.1, refcount_bits=1..64\n"
        "  info [-f FMT] [--output=human|json] FILE\n"
        "         show the format, sizes, backing chain and qcow2 features\n"
        "  check [-f FMT] [-r leaks|all] FILE\n"
        "         check the refcounts and tables of a qcow2 image; -r repairs leaks\n"
        "         (leaks) or every refcount error (all) and clears the dirty bit.\n"
        "         exit status: 0 clean, 1 cannot check, 2 corruption, 3 leaks only\n"
        "  convert [-f FMT] -O FMT [-o OPTIONS] [-p] IN OUT\n"
        "         copy IN to a new image OUT (raw <-> qcow2, qcow2 -> qcow2: the\n"
        "         backing chain of IN is flattened); zero areas stay sparse.\n"
        "         -p shows progress (on by default when stderr is a terminal)\n"
        "  map [-f FMT] [--output=human|json] FILE\n"
        "         list where the guest's data lives in the image file\n"
        "  snapshot [-l | -c NAME | -a NAME | -d NAME] FILE\n"
        "         internal snapshots of a qcow2 image: list (default), create,\n"
        "         apply (revert the disk to it) or delete; NAME is an ID or a name\n"
        "  resize [--shrink] FILE [+|-]SIZE\n"
        "         change the virtual size; shrinking needs --shrink and, for qcow2,\n"
        "         nothing allocated past the new end\n"
        "  rebase [-u] [-p] -b NEWBASE [-F FMT] FILE\n"
        "         give FILE another backing file (-b \"\": none).  Without -u, data that\n"
        "         differs between the old and the new backing chain is first copied\n"
        "         into FILE so the guest sees the same disk; -u only rewrites the name\n"
        "  commit [-d] [-p] FILE\n"
        "         write the clusters FILE holds into its backing file, then empty\n"
        "         FILE (-d: keep them)\n"
        "\n"
        "External snapshot: 'create -f qcow2 -b CURRENT -F FMT NEW' puts a new\n"
        "overlay on top of the current image; boot from NEW from then on.\n"
        "\n"
        "Without -f the format is probed: the qcow2 magic means qcow2, anything\n"
        "else is raw. Backing file names are resolved against the overlay's\n"
        "directory.\n");
}

static int parse_create_opts(char *opts, struct qimg_create_opts *o)
{
    char *save = NULL;
    for (char *item = strtok_r(opts, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *val = strchr(item, '=');
        if (!val) {
            fprintf(stderr, "petrel img: -o %s: expected NAME=VALUE\n", item);
            return -1;
        }
        *val++ = 0;
        uint64_t v;
        if (!strcmp(item, "cluster_size")) {
            if (opts_size(val, 0, &v) < 0 || v < 512 || v > (2u << 20) || (v & (v - 1))) {
                fprintf(stderr, "petrel img: cluster_size must be a power of two from 512 to "
                        "2M\n");
                return -1;
            }
            o->cluster_bits = (uint32_t)__builtin_ctzll(v);
        } else if (!strcmp(item, "compat")) {
            if (!strcmp(val, "0.10") || !strcmp(val, "v2"))
                o->version = 2;
            else if (!strcmp(val, "1.1") || !strcmp(val, "v3"))
                o->version = 3;
            else {
                fprintf(stderr, "petrel img: compat must be 0.10 or 1.1\n");
                return -1;
            }
        } else if (!strcmp(item, "refcount_bits")) {
            if (opts_size(val, 0, &v) < 0 || v == 0 || v > 64 || (v & (v - 1))) {
                fprintf(stderr, "petrel img: refcount_bits must be 1, 2, 4, ..., 64\n");
                return -1;
            }
            o->refcount_bits = (uint32_t)v;
        } else {
            fprintf(stderr, "petrel img: unknown option '%s' (cluster_size, compat, "
                    "refcount_bits)\n", item);
            return -1;
        }
    }
    return 0;
}

static int img_create(int argc, char **argv)
{
    struct qimg_create_opts o = { .fmt = "qcow2" };
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:b:F:o:h")) != -1) {
        switch (c) {
        case 'f': o.fmt = optarg; break;
        case 'b': o.backing = optarg; break;
        case 'F': o.backing_fmt = optarg; break;
        case 'o':
            if (parse_create_opts(optarg, &o) < 0)
                return 1;
            break;
        default:
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind >= argc || argc - optind > 2) {
        fprintf(stderr, "petrel img create: expected FILE [SIZE]\n");
        return 1;
    }
    const char *file = argv[optind];
    if (optind + 1 < argc && opts_size(argv[optind + 1], 0, &o.size) < 0) {
        fprintf(stderr, "petrel img create: invalid size '%s'\n", argv[optind + 1]);
        return 1;
    }
    if (!o.size && !o.backing) {
        fprintf(stderr, "petrel img create: a size is needed without a backing file\n");
        return 1;
    }
    struct err e = { "" };
    if (qimg_create(file, &o, &e) < 0) {
        fprintf(stderr, "petrel img create: %s\n", e.msg);
        return 1;
    }
    return 0;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* `petrel img info|map [-f FMT] [--output=human|json] FILE`: parse the
 * options and open FILE read-only.  Returns -1 with *q open, or the exit
 * status to return (usage, help, or an image that does not open). */
static int open_for_reading(const char *cmd, int argc, char **argv, struct qimg **q,
                            bool *json)
{
    const char *fmt = NULL;
    static const struct option lo[] = { { "output", required_argument, 0, 'O' },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int c;
    *json = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
        if (c == 'f')
            fmt = optarg;
        else if (c == 'O' && (!strcmp(optarg, "json") || !strcmp(optarg, "human")))
            *json = !strcmp(optarg, "json");
        else {
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "petrel img %s: expected FILE\n", cmd);
        return 1;
    }
    struct err e = { "" };
    if (qimg_open(q, argv[optind], fmt, true, &e) < 0) {
        fprintf(stderr, "petrel img %s: %s\n", cmd, e.msg);
        return 1;
    }
    return -1;
}

static int img_info(int argc, char **argv)
{
    struct qimg *q;
    bool json;
    int status = open_for_reading("info", argc, argv, &q, &json);
    if (status >= 0)
        return status;
    struct stat st;
    uint64_t disk = fstat(q->fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
    const char *format = q->raw ? "raw" : "qcow2";
    if (json) {
        printf("{\n    \"filename\": ");
        json_str(stdout, q->path);
        printf(",\n    \"format\": \"%s\",\n    \"virtual-size\": %llu,\n    \"actual-size\": "
               "%llu", format, (unsigned long long)q->size, (unsigned long long)disk);
        if (!q->raw) {
            printf(",\n    \"cluster-size\": %llu,\n    \"dirty-flag\": %s",
                   (unsigned long long)q->cluster_size,
                   q->incompat & QCOW2_INCOMPAT_DIRTY ? "true" : "false");
            if (q->backing_name) {
                printf(",\n    \"backing-filename\": ");
                json_str(stdout, q->backing_name);
                if (q->backing_fmt[0]) {
                    printf(",\n    \"backing-filename-format\": ");
                    json_str(stdout, q->backing_fmt);
                }
            }
            printf(",\n    \"format-specific\": {\n        \"type\": \"qcow2\",\n        "
                   "\"data\": {\n            \"compat\": \"%s\",\n            "
                   "\"compression-type\": \"%s\",\n            \"refcount-bits\": %u,\n"
                   "            \"corrupt\": %s,\n            \"lazy-refcounts\": %s\n"
                   "        }\n    }", q->version == 2 ? "0.10" : "1.1",
                   q->compression ? "zstd" : "zlib", 1u << q->refcount_order,
                   q->incompat & QCOW2_INCOMPAT_CORRUPT ? "true" : "false",
                   q->compat & QCOW2_COMPAT_LAZY ? "true" : "false");
        }
        printf("\n}\n");
    } else {
        printf("image: %s\nfile format: %s\nvirtual size: %llu bytes\ndisk size: %llu bytes\n",
               q->path, format, (unsigned long long)q->size, (unsigned long long)disk);
        if (!q->raw) {
            printf("cluster_size: %llu\n", (unsigned long long)q->cluster_size);
            char esc[4200];
            if (q->backing_name)
                printf("backing file: %s\n",
                       qimg_printable(esc, sizeof(esc), q->backing_name, SIZE_MAX));
            if (q->backing_fmt[0])
                printf("backing file format: %s\n",
                       qimg_printable(esc, sizeof(esc), q->backing_fmt, SIZE_MAX));
            printf("Format specific information:\n    compat: %s\n    compression type: %s\n"
                   "    lazy refcounts: %s\n    refcount bits: %u\n    corrupt: %s\n"
                   "    dirty: %s\n    snapshots: %u\n",
                   q->version == 2 ? "0.10" : "1.1", q->compression ? "zstd" : "zlib",
                   q->compat & QCOW2_COMPAT_LAZY ? "true" : "false", 1u << q->refcount_order,
                   q->incompat & QCOW2_INCOMPAT_CORRUPT ? "true" : "false",
                   q->incompat & QCOW2_INCOMPAT_DIRTY ? "true" : "false", q->nb_snapshots);
        }
    }
    qimg_close(q);
    return 0;
}

static int img_check(int argc, char **argv)
{
    const char *fmt = NULL;
    int repair = 0, c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:r:h")) != -1) {
        if (c == 'f') {
            fmt = optarg;
        } else if (c == 'r' && (!strcmp(optarg, "leaks") || !strcmp(optarg, "all"))) {
            repair = !strcmp(optarg, "all") ? 2 : 1;
        } else {
            if (c == 'r')
                fprintf(stderr, "petrel img check: -r takes leaks or all\n");
            else
                cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "petrel img check: expected FILE\n");
        return 1;
    }
    struct err e = { "" };
    struct qimg *q;
    int r = repair ? (fmt && strcmp(fmt, "qcow2") ? -EINVAL : qimg_open_repair(&q, argv[optind], &e))
                   : qimg_open(&q, argv[optind], fmt, true, &e);
    if (r < 0) {
        fprintf(stderr, "petrel img check: %s\n", e.msg[0] ? e.msg : "only qcow2 can be repaired");
        return 1;
    }
    struct qimg_check res;
    if (qimg_check(q, repair, &res, stdout, &e) < 0) {
        fprintf(stderr, "petrel img check: %s\n", e.msg);
        qimg_close(q);
        return 1;
    }
    uint64_t corrupt = res.corruptions - res.fixed_corruptions, leaks = res.leaks - res.fixed_leaks;
    if (repair && (res.fixed_leaks || res.fixed_corruptions))
        printf("The following inconsistencies were found and repaired:\n\n    %llu leaked "
               "clusters\n    %llu corruptions\n\n", (unsigned long long)res.fixed_leaks,
               (unsigned long long)res.fixed_corruptions);
    if (!corrupt && !leaks)
        printf("No errors were found on the image.\n");
    if (corrupt)
        printf("\n%llu errors were found on the image.\nData may be corrupted, or further "
               "writes to the image may corrupt it.\n", (unsigned long long)corrupt);
    if (leaks)
        printf("\n%llu leaked clusters were found on the image.\nThis means waste of disk "
               "space, but no harm to data.\n", (unsigned long long)leaks);
    printf("%llu/%llu = %.2f%% allocated\nImage end offset: %llu\n",
           (unsigned long long)res.allocated, (unsigned long long)res.total,
           res.total ? 100.0 * (double)res.allocated / (double)res.total : 0.0,
           (unsigned long long)res.image_end);
    qimg_close(q);
    return corrupt ? 2 : leaks ? 3 : 0;
}

static void progress(bool on, uint64_t done, uint64_t total)
{
    if (on)
        fprintf(stderr, "\r    (%6.2f/100%%)", total ? 100.0 * (double)done / (double)total : 100.0);
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

#define CONVERT_CHUNK (2u << 20)

static int img_convert(int argc, char **argv)
{
    const char *ifmt = NULL;
    struct qimg_create_opts o = { .fmt = NULL };
    bool prog = isatty(2);
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:O:o:ph")) != -1) {
        switch (c) {
        case 'f': ifmt = optarg; break;
        case 'O': o.fmt = optarg; break;
        case 'p': prog = true; break;
        case 'o':
            if (parse_create_opts(optarg, &o) < 0)
                return 1;
            break;
        default:
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (argc - optind != 2 || !o.fmt) {
        fprintf(stderr, "petrel img convert: expected -O FMT IN OUT\n");
        return 1;
    }
    struct err e = { "" };
    struct qimg *in = NULL, *out = NULL;
    uint8_t *buf = NULL;
    int ret = 1;
    if (qimg_open(&in, argv[optind], ifmt, true, &e) < 0) {
        fprintf(stderr, "petrel img convert: %s\n", e.msg);
        return 1;
    }
    o.size = in->size;
    if (o.size % 512) {
        fprintf(stderr, "petrel img convert: %s: size %llu is not a multiple of 512\n", in->path,
                (unsigned long long)o.size);
        goto out;
    }
    if (qimg_create(argv[optind + 1], &o, &e) < 0 ||
        qimg_open(&out, argv[optind + 1], o.fmt, false, &e) < 0) {
        fprintf(stderr, "petrel img convert: %s\n", e.msg);
        goto out;
    }
    if (!(buf = malloc(CONVERT_CHUNK))) {
        fprintf(stderr, "petrel img convert: out of memory\n");
        goto out;
    }
    uint64_t pos = 0, total = in->size;
    progress(prog, 0, total);
    while (pos < total) {
        uint64_t n = total - pos < CONVERT_CHUNK ? total - pos : CONVERT_CHUNK;
        struct qimg_extent x;
        if (qimg_map(in, pos, n, &x) < 0) {
            fprintf(stderr, "petrel img convert: %s\n", in->err.msg);
            goto out;
        }
        n = x.len;
        if (x.state != QIMG_ZERO && x.state != QIMG_UNALLOC) {
            if (qimg_pread(in, buf, n, pos) < 0) {
                fprintf(stderr, "petrel img convert: %s\n", in->err.msg);
                goto out;
            }
            if (!all_zero(buf, n) && qimg_pwrite(out, buf, n, pos) < 0) {
                fprintf(stderr, "petrel img convert: %s\n", out->err.msg);
                goto out;
            }
        }
        pos += n;
        progress(prog, pos, total);
    }
    if (qimg_flush(out) < 0) {
        fprintf(stderr, "petrel img convert: %s\n", out->err.msg);
        goto out;
    }
    ret = 0;
out:
    if (prog)
        fprintf(stderr, "\n");
    free(buf);
    qimg_close(out);
    qimg_close(in);
    return ret;
}

static int img_map(int argc, char **argv)
{
    struct qimg *q;
    bool json;
    int status = open_for_reading("map", argc, argv, &q, &json);
    if (status >= 0)
        return status;
    if (json)
        printf("[");
    else
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    uint64_t pos = 0;
    bool first = true;
    int ret = 0;
    while (pos < q->size) {
        struct qimg_extent x;
        if (qimg_map(q, pos, q->size - pos, &x) < 0) {
            fprintf(stderr, "petrel img map: %s\n", q->err.msg);
            ret = 1;
            break;
        }
        /* merge with following extents of the same kind */
        for (;;) {
            struct qimg_extent y;
            if (pos + x.len >= q->size || qimg_map(q, pos + x.len, q->size - pos - x.len, &y) < 0)
                break;
            if (y.state != x.state || y.depth != x.depth ||
                (x.state == QIMG_DATA && y.host != x.host + x.len))
                break;
            x.len += y.len;
        }
        struct qimg *f = q;
        for (int d = 0; d < x.depth && f->backing; d++)
            f = f->backing;
        bool data = x.state == QIMG_DATA || x.state == QIMG_COMPRESSED;
        if (json) {
            printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, "
                   "\"zero\": %s, \"data\": %s", first ? "\n" : ",\n", (unsigned long long)pos,
                   (unsigned long long)x.len, x.depth, x.state != QIMG_UNALLOC ? "true" : "false",
                   data ? "false" : "true", data ? "true" : "false");
            if (x.state == QIMG_DATA)
                printf(", \"offset\": %llu", (unsigned long long)x.host);
            printf("}");
        } else if (x.state == QIMG_DATA) {
            printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)pos,
                   (unsigned long long)x.len, (unsigned long long)x.host, f->path);
        } else if (x.state == QIMG_COMPRESSED) {
            printf("%#-16llx%#-16llx%-16s%s\n", (unsigned long long)pos,
                   (unsigned long long)x.len, "compressed", f->path);
        }
        first = false;
        pos += x.len;
    }
    if (json)
        printf("]\n");
    qimg_close(q);
    return ret;
}

/* Crash-test writer: deterministic writes and discards, a flush after
 * every 8 operations; "F n" on stdout once the first n operations are
 * durable.  The test (tests/integration/test_img.py) mirrors the generator. */
static uint64_t xs_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static int img_bench_write(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: petrel img bench-write FILE SEED OPS\n");
        return 1;
    }
    struct err e = { "" };
    struct qimg *q;
    if (qimg_open(&q, argv[1], NULL, false, &e) < 0) {
        fprintf(stderr, "petrel img bench-write: %s\n", e.msg);
        return 1;
    }
    uint64_t seed = strtoull(argv[2], NULL, 0) | 1, ops = strtoull(argv[3], NULL, 0);
    uint64_t nsect = q->size / 512;
    uint8_t *buf = malloc(512 * 512);
    int ret = 0;
    for (uint64_t i = 0; i < ops && buf; i++) {
        uint64_t kind = xs_next(&seed) % 8, s = xs_next(&seed) % nsect;
        uint64_t n = 1 + xs_next(&seed) % 512;
        if (n > nsect - s)
            n = nsect - s;
        int r;
        if (kind == 0) {
            r = qimg_discard(q, s * 512, n * 512);
        } else {
            for (uint64_t k = 0; k < n; k++)
                for (unsigned w = 0; w < 64; w++) {
                    uint64_t tag = (i + 1) << 32 | (s + k);
                    memcpy(buf + k * 512 + w * 8, &tag, 8);
                }
            r = qimg_pwrite(q, buf, n * 512, s * 512);
        }
        if (r == 0 && (i + 1) % 8 == 0 && (r = qimg_flush(q)) == 0) {
            char line[32];
            int l = snprintf(line, sizeof(line), "F %llu\n", (unsigned long long)(i + 1));
            if (write(1, line, (size_t)l) != l)
                r = -EIO;
        }
        if (r < 0) {
            fprintf(stderr, "petrel img bench-write: op %llu: %s\n", (unsigned long long)i,
                    q->err.msg);
            ret = 1;
            break;
        }
    }
    free(buf);
    qimg_close(q);
    return ret;
}

/* --- snapshot --- */

static void size_str(uint64_t v, char *out, size_t n)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    if (v < 1024) {
        snprintf(out, n, "%llu B", (unsigned long long)v);
        return;
    }
    double d = (double)v;
    unsigned u = 0;
    while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        d /= 1024;
        u++;
    }
    snprintf(out, n, "%0.3g %s", d, units[u]);
}

static void snapshot_list(const struct qimg_snapshot *s, uint32_t n)
{
    printf("Snapshot list:\n%-9s %-17s %7s %19s %12s %10s\n", "ID", "TAG", "VM SIZE", "DATE",
           "VM CLOCK", "ICOUNT");
    for (uint32_t i = 0; i < n; i++) {
        char vm[32], date[32] = "", clk[48], ic[24] = "";
        size_str(s[i].vm_state_size, vm, sizeof(vm));
        time_t t = (time_t)s[i].date_sec;
        struct tm tm;
        if (localtime_r(&t, &tm))
            strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
        uint64_t ms = s[i].vm_clock_nsec / 1000000;
        snprintf(clk, sizeof(clk), "%02llu:%02llu:%02llu.%03llu",
                 (unsigned long long)(ms / 3600000), (unsigned long long)(ms / 60000 % 60),
                 (unsigned long long)(ms / 1000 % 60), (unsigned long long)(ms % 1000));
        if (s[i].icount != UINT64_MAX)
            snprintf(ic, sizeof(ic), "%llu", (unsigned long long)s[i].icount);
        char id[160], name[4100];
        printf("%-9s %-17s %7s %19s %12s %10s\n", qimg_printable(id, sizeof(id), s[i].id, SIZE_MAX),
               qimg_printable(name, sizeof(name), s[i].name, SIZE_MAX), vm, date, clk, ic);
    }
}

static int img_snapshot(int argc, char **argv)
{
    const char *fmt = NULL, *name = NULL;
    char op = 0;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:lc:a:d:h")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'l': case 'c': case 'a': case 'd':
            if (op && op != c) {
                fprintf(stderr, "petrel img snapshot: -l, -c, -a and -d exclude each other\n");
                return 1;
            }
            op = (char)c;
            name = optarg;
            break;
        default:
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (!op)
        op = 'l';
    if (optind != argc - 1) {
        fprintf(stderr, "petrel img snapshot: expected [-l | -c NAME | -a NAME | -d NAME] FILE\n");
        return 1;
    }
    struct err e = { "" };
    struct qimg *q;
    /* the backing chain is not needed: snapshots are this file's own tables */
    if (qimg_open_flags(&q, argv[optind], fmt, QIMG_NO_BACKING | (op == 'l' ? QIMG_RO : 0),
                        &e) < 0) {
        fprintf(stderr, "petrel img snapshot: %s\n", e.msg);
        return 1;
    }
    int r = 0;
    if (q->raw) {
        r = err_set(&e, -ENOTSUP, "%s: raw images have no internal snapshots (convert to qcow2)",
                    q->path);
    } else if (op == 'l') {
        struct qimg_snapshot *s;
        if ((r = qimg_snapshots_read(q, &s, &e)) == 0) {
            if (q->nb_snapshots)
                snapshot_list(s, q->nb_snapshots);
            qimg_snapshots_free(s, q->nb_snapshots);
        }
    } else if (op == 'c') {
        r = qimg_snapshot_create(q, name, &e);
    } else if (op == 'a') {
        r = qimg_snapshot_apply(q, name, &e);
    } else {
        r = qimg_snapshot_delete(q, name, &e);
    }
    if (r < 0)
        fprintf(stderr, "petrel img snapshot: %s\n", e.msg);
    qimg_close(q);
    return r < 0;
}

/* --- resize --- */

static int img_resize(int argc, char **argv)
{
    const char *fmt = NULL;
    bool shrink = false;
    if (argc < 3) {
        fprintf(stderr, "petrel img resize: expected [--shrink] FILE [+|-]SIZE\n");
        return 1;
    }
    /* the size comes last and may start with '-': keep it away from getopt */
    const char *sz = argv[argc - 1];
    static const struct option lo[] = { { "shrink", no_argument, 0, 'S' },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv, "f:h", lo, NULL)) != -1) {
        if (c == 'f')
            fmt = optarg;
        else if (c == 'S')
            shrink = true;
        else {
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc - 2) {
        fprintf(stderr, "petrel img resize: expected [--shrink] FILE [+|-]SIZE\n");
        return 1;
    }
    int sign = sz[0] == '+' ? 1 : sz[0] == '-' ? -1 : 0;
    uint64_t v;
    if (opts_size(sz + (sign != 0), 0, &v) < 0) {
        fprintf(stderr, "petrel img resize: invalid size '%s'\n", sz);
        return 1;
    }
    struct err e = { "" };
    struct qimg *q;
    if (qimg_open(&q, argv[optind], fmt, false, &e) < 0) {
        fprintf(stderr, "petrel img resize: %s\n", e.msg);
        return 1;
    }
    uint64_t size = v;
    int r = 0;
    if (sign > 0 && v > (1ull << 61) - q->size)
        r = err_set(&e, -EINVAL, "the new size is too large");
    else if (sign < 0 && v > q->size)
        r = err_set(&e, -EINVAL, "cannot shrink by %llu bytes: the image has %llu",
                    (unsigned long long)v, (unsigned long long)q->size);
    else if (sign)
        size = sign > 0 ? q->size + v : q->size - v;
    if (r == 0)
        r = qimg_resize(q, size, shrink, &e);
    if (r < 0)
        fprintf(stderr, "petrel img resize: %s\n", e.msg);
    else
        printf("Image resized.\n");
    qimg_close(q);
    return r < 0;
}

/* --- rebase --- */

/* name as an overlay at file resolves it: relative to file's directory. */
static char *resolve_backing(const char *file, const char *name)
{
    char *out = NULL;
    if (name[0] == '/')
        return strdup(name);
    const char *slash = strrchr(file, '/');
    if (!slash)
        return strdup(name);
    if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, name) < 0)
        return NULL;
    return out;
}

static int img_rebase(int argc, char **argv)
{
    const char *fmt = NULL, *newb = NULL, *newfmt = NULL;
    bool unsafe = false, prog = isatty(2);
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:b:F:uph")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'b': newb = optarg; break;
        case 'F': newfmt = optarg; break;
        case 'u': unsafe = true; break;
        case 'p': prog = true; break;
        default:
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc - 1 || !newb) {
        fprintf(stderr, "petrel img rebase: expected [-u] -b NEWBASE [-F FMT] FILE\n");
        return 1;
    }
    const char *file = argv[optind];
    struct err e = { "" };
    struct qimg *q = NULL, *nb = NULL;
    uint8_t *ob = NULL, *nbuf = NULL;
    int ret = 1;
    if (qimg_open_flags(&q, file, fmt, unsafe ? QIMG_NO_BACKING : 0, &e) < 0) {
        fprintf(stderr, "petrel img rebase: %s\n", e.msg);
        return 1;
    }
    if (q->raw) {
        fprintf(stderr, "petrel img rebase: %s: raw images have no backing file\n", file);
        goto out;
    }
    if (newb[0]) {
        char *bp = resolve_backing(file, newb);
        int r = bp ? qimg_open(&nb, bp, newfmt, true, &e) : err_set(&e, -ENOMEM, "out of memory");
        free(bp);
        if (r < 0) {
            fprintf(stderr, "petrel img rebase: the new backing file: %s\n", e.msg);
            if (!unsafe)
                goto out;
            nb = NULL;                    /* -u: the name is enough */
        }
        if (!newfmt && nb)
            newfmt = nb->raw ? "raw" : "qcow2";
    }
    if (!unsafe) {
        /* copy into the overlay what would read differently on the new chain */
        if (!(ob = malloc(CONVERT_CHUNK)) || !(nbuf = malloc(CONVERT_CHUNK))) {
            fprintf(stderr, "petrel img rebase: out of memory\n");
            goto out;
        }
        uint64_t pos = 0, total = q->size, cs = q->cluster_size;
        progress(prog, 0, total);
        while (pos < total) {
            struct qimg_extent x;
            uint64_t n = total - pos < CONVERT_CHUNK ? total - pos : CONVERT_CHUNK;
            if (qimg_map(q, pos, n, &x) < 0) {
                fprintf(stderr, "petrel img rebase: %s\n", q->err.msg);
                goto out;
            }
            n = x.len;
            if (x.depth == 0 && x.state != QIMG_UNALLOC) {
                pos += n;                 /* the overlay's own data: unchanged */
                progress(prog, pos, total);
                continue;
            }
            uint64_t have = nb && pos < nb->size ? nb->size - pos : 0;
            if (have > n)
                have = n;
            if (qimg_pread(q, ob, n, pos) < 0) {
                fprintf(stderr, "petrel img rebase: %s\n", q->err.msg);
                goto out;
            }
            if (have && qimg_pread(nb, nbuf, have, pos) < 0) {
                fprintf(stderr, "petrel img rebase: %s\n", nb->err.msg);
                goto out;
            }
            memset(nbuf + have, 0, n - have);
            for (uint64_t k = 0; k < n;) {
                uint64_t piece = cs - (pos + k) % cs;
                if (piece > n - k)
                    piece = n - k;
                if (memcmp(ob + k, nbuf + k, piece) && qimg_pwrite(q, ob + k, piece, pos + k) < 0) {
                    fprintf(stderr, "petrel img rebase: %s\n", q->err.msg);
                    goto out;
                }
                k += piece;
            }
            pos += n;
            progress(prog, pos, total);
        }
    }
    if (qimg_set_backing(q, newb[0] ? newb : NULL, newfmt, &e) < 0) {
        fprintf(stderr, "petrel img rebase: %s\n", e.msg);
        goto out;
    }
    ret = 0;
out:
    if (prog && !unsafe)
        fprintf(stderr, "\n");
    free(ob);
    free(nbuf);
    qimg_close(nb);
    qimg_close(q);
    return ret;
}

/* --- commit --- */

static int img_commit(int argc, char **argv)
{
    bool keep = false, prog = isatty(2);
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:dph")) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "qcow2")) {
                fprintf(stderr, "petrel img commit: only qcow2 overlays can be committed\n");
                return 1;
            }
            break;
        case 'd': keep = true; break;
        case 'p': prog = true; break;
        default:
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "petrel img commit: expected [-d] [-p] FILE\n");
        return 1;
    }
    struct err e = { "" };
    struct qimg *q;
    if (qimg_open_backing_rw(&q, argv[optind], &e) < 0) {
        fprintf(stderr, "petrel img commit: %s\n", e.msg);
        return 1;
    }
    struct qimg *b = q->backing;
    uint8_t *buf = NULL;
    int ret = 1;
    if (q->size > b->size) {
        fprintf(stderr, "petrel img commit: the backing file %s (%llu bytes) is smaller than %s "
                "(%llu bytes); resize it first\n", b->path, (unsigned long long)b->size,
                q->path, (unsigned long long)q->size);
        goto out;
    }
    if (!(buf = malloc(CONVERT_CHUNK))) {
        fprintf(stderr, "petrel img commit: out of memory\n");
        goto out;
    }
    uint64_t pos = 0, total = q->size;
    progress(prog, 0, total);
    while (pos < total) {
        struct qimg_extent x;
        uint64_t n = total - pos < CONVERT_CHUNK ? total - pos : CONVERT_CHUNK;
        if (qimg_map(q, pos, n, &x) < 0) {
            fprintf(stderr, "petrel img commit: %s\n", q->err.msg);
            goto out;
        }
        n = x.len;
        int r = 0;
        struct qimg *ef = q;
        if (x.depth == 0 && x.state == QIMG_ZERO) {
            r = qimg_write_zeroes(b, pos, n, false);
            ef = b;
        } else if (x.depth == 0 && x.state != QIMG_UNALLOC) {
            if ((r = qimg_pread(q, buf, n, pos)) == 0) {
                r = qimg_pwrite(b, buf, n, pos);
                ef = b;
            }
        }
        if (r < 0) {
            fprintf(stderr, "petrel img commit: %s\n", ef->err.msg);
            goto out;
        }
        pos += n;
        progress(prog, pos, total);
    }
    if (qimg_flush(b) < 0) {
        fprintf(stderr, "petrel img commit: %s\n", b->err.msg);
        goto out;
    }
    if (!keep && qimg_make_empty(q, &e) < 0) {
        fprintf(stderr, "petrel img commit: %s\n", e.msg);
        goto out;
    }
    ret = 0;
out:
    if (prog)
        fprintf(stderr, "\n");
    if (ret == 0)
        printf("Image committed.\n");
    free(buf);
    qimg_close(q);
    return ret;
}

/* --- bench: qemu-io-like commands from stdin, timed --- */

/* Commands, one a line: "write [-P BYTE] OFF LEN", "read [-P BYTE] OFF LEN"
 * (-P on read checks the pattern), "flush"; sizes take K/M/G suffixes. */
static int img_bench(int argc, char **argv)
{
    const char *fmt = NULL;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:h")) != -1) {
        if (c == 'f') {
            fmt = optarg;
        } else {
            fprintf(stderr, "usage: petrel img bench [-f FMT] FILE < COMMANDS\n");
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: petrel img bench [-f FMT] FILE < COMMANDS\n");
        return 1;
    }
    struct err e = { "" };
    struct qimg *q;
    if (qimg_open(&q, argv[optind], fmt, false, &e) < 0) {
        fprintf(stderr, "petrel img bench: %s\n", e.msg);
        return 1;
    }
    char line[256];
    uint8_t *buf = NULL;
    uint64_t cap = 0, ops = 0, bytes = 0, lineno = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ret = 0;
    while (fgets(line, sizeof(line), stdin)) {
        lineno++;
        char cmd[16], a[32], b[32], d[32], f[32];
        int pat = -1, k = sscanf(line, "%15s %31s %31s %31s %31s", cmd, a, b, d, f);
        if (k < 1 || cmd[0] == '#')
            continue;
        int r;
        if (!strcmp(cmd, "flush")) {
            r = qimg_flush(q);
        } else if (!strcmp(cmd, "write") || !strcmp(cmd, "read")) {
            const char *so = a, *sl = b;
            if (k == 5 && !strcmp(a, "-P")) {
                pat = (int)strtol(b, NULL, 0) & 0xff;
                so = d;
                sl = f;
            } else if (k != 3) {
                fprintf(stderr, "petrel img bench: line %llu: expected %s [-P BYTE] OFF LEN\n",
                        (unsigned long long)lineno, cmd);
                ret = 1;
                break;
            }
            uint64_t off, len;
            if (opts_size(so, 0, &off) < 0 || opts_size(sl, 0, &len) < 0 || len > (1u << 30) ||
                off > q->size || len > q->size - off) {
                fprintf(stderr, "petrel img bench: line %llu: bad offset or length (image size "
                        "%llu)\n", (unsigned long long)lineno, (unsigned long long)q->size);
                ret = 1;
                break;
            }
            if (len > cap) {
                uint8_t *nb = realloc(buf, len);
                if (!nb) {
                    fprintf(stderr, "petrel img bench: out of memory\n");
                    ret = 1;
                    break;
                }
                buf = nb;
                cap = len;
            }
            if (cmd[0] == 'w') {
                memset(buf, pat < 0 ? 0xcd : pat, len);
                r = qimg_pwrite(q, buf, len, off);
            } else {
                r = qimg_pread(q, buf, len, off);
                for (uint64_t i = 0; r == 0 && pat >= 0 && i < len; i++)
                    if (buf[i] != pat) {
                        fprintf(stderr, "petrel img bench: line %llu: pattern mismatch at "
                                "%llu\n", (unsigned long long)lineno,
                                (unsigned long long)(off + i));
                        ret = 1;
                        break;
                    }
            }
            bytes += len;
        } else {
            fprintf(stderr, "petrel img bench: line %llu: unknown command '%s' (write, read, "
                    "flush)\n", (unsigned long long)lineno, cmd);
            ret = 1;
            break;
        }
        if (r < 0) {
            fprintf(stderr, "petrel img bench: line %llu: %s\n", (unsigned long long)lineno,
                    q->err.msg);
            ret = 1;
            break;
        }
        if (ret)
            break;
        ops++;
    }
    if (ret == 0 && qimg_flush(q) < 0) {
        fprintf(stderr, "petrel img bench: %s\n", q->err.msg);
        ret = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (ret == 0)
        printf("ops %llu bytes %llu seconds %.3f MiB/s %.1f IOPS %.0f\n",
               (unsigned long long)ops, (unsigned long long)bytes, s,
               s > 0 ? (double)bytes / s / 1048576 : 0.0, s > 0 ? (double)ops / s : 0.0);
    free(buf);
    qimg_close(q);
    return ret;
}

int cli_img(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        cli_img_usage();
        return argc < 2 ? 1 : 0;
    }
    const char *cmd = argv[1];
    argc--;
    argv++;
    if (!strcmp(cmd, "create"))
        return img_create(argc, argv);
    if (!strcmp(cmd, "info"))
        return img_info(argc, argv);
    if (!strcmp(cmd, "check"))
        return img_check(argc, argv);
    if (!strcmp(cmd, "convert"))
        return img_convert(argc, argv);
    if (!strcmp(cmd, "map"))
        return img_map(argc, argv);
    if (!strcmp(cmd, "snapshot"))
        return img_snapshot(argc, argv);
    if (!strcmp(cmd, "resize"))
        return img_resize(argc, argv);
    if (!strcmp(cmd, "rebase"))
        return img_rebase(argc, argv);
    if (!strcmp(cmd, "commit"))
        return img_commit(argc, argv);
    if (!strcmp(cmd, "bench"))
        return img_bench(argc, argv);
    if (!strcmp(cmd, "bench-write"))
        return img_bench_write(argc, argv);
    fprintf(stderr, "petrel img: unknown command '%s' (try 'petrel img --help')\n", cmd);
    return 1;
}
