/* `petrel img`: disk image tools shaped like qemu-img (create, info, check,
 * convert, map) over the synchronous qcow2/raw core (block/qcow2.h), plus a
 * hidden `bench-write` used by the crash-consistency test. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "cli/cli.h"

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
        "\n"
        "Without -f the format is probed: the qcow2 magic means qcow2, anything\n"
        "else is raw. Backing file names are resolved against the overlay's\n"
        "directory.\n");
}

static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned sh = 0;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': sh = 10; end++; break;
    case 'm': case 'M': sh = 20; end++; break;
    case 'g': case 'G': sh = 30; end++; break;
    case 't': case 'T': sh = 40; end++; break;
    default: return -1;
    }
    if (*end == 'i' || *end == 'B')
        end++;
    if (*end || (sh && v > (~0ull >> sh)))
        return -1;
    *out = v << sh;
    return 0;
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
            if (parse_bytes(val, &v) < 0 || v < 512 || v > (2u << 20) || (v & (v - 1))) {
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
            if (parse_bytes(val, &v) < 0 || v == 0 || v > 64 || (v & (v - 1))) {
                fprintf(stderr, "petrel img: refcount_bits must be 1, 2, 4, ..., 64\n");
                return -1;
            }
            o->refcount_order = (uint32_t)__builtin_ctzll(v);
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
    if (optind + 1 < argc && parse_bytes(argv[optind + 1], &o.size) < 0) {
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

static int img_info(int argc, char **argv)
{
    const char *fmt = NULL;
    bool json = false;
    static const struct option lo[] = { { "output", required_argument, 0, 'O' },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
        if (c == 'f')
            fmt = optarg;
        else if (c == 'O' && (!strcmp(optarg, "json") || !strcmp(optarg, "human")))
            json = !strcmp(optarg, "json");
        else {
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "petrel img info: expected FILE\n");
        return 1;
    }
    struct err e = { "" };
    struct qimg *q;
    if (qimg_open(&q, argv[optind], fmt, true, &e) < 0) {
        fprintf(stderr, "petrel img info: %s\n", e.msg);
        return 1;
    }
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
            if (q->backing_name)
                printf("backing file: %s\n", q->backing_name);
            if (q->backing_fmt[0])
                printf("backing file format: %s\n", q->backing_fmt);
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
    const char *fmt = NULL;
    bool json = false;
    static const struct option lo[] = { { "output", required_argument, 0, 'O' },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
        if (c == 'f')
            fmt = optarg;
        else if (c == 'O' && (!strcmp(optarg, "json") || !strcmp(optarg, "human")))
            json = !strcmp(optarg, "json");
        else {
            cli_img_usage();
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "petrel img map: expected FILE\n");
        return 1;
    }
    struct err e = { "" };
    struct qimg *q;
    if (qimg_open(&q, argv[optind], fmt, true, &e) < 0) {
        fprintf(stderr, "petrel img map: %s\n", e.msg);
        return 1;
    }
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
    if (!strcmp(cmd, "bench-write"))
        return img_bench_write(argc, argv);
    fprintf(stderr, "petrel img: unknown command '%s' (try 'petrel img --help')\n", cmd);
    return 1;
}
