/* Base images (src/cli/vm_image.c) and SHA-256 (src/cli/sha256.c): FIPS
 * vectors and incremental hashing; an import is a sparse, read-only,
 * byte-identical copy named by its content's hash; identical content is
 * stored once (the same source again, another path, a lost record); new
 * content is a new image and the old one stays; a malformed record is
 * ignored; qcow2 bases keep their format; a qcow2 with a backing file and a
 * missing source are refused; no temporary file is left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "cli/sha256.h"
#include "cli/vm_def.h"
#include "cli/vm_image.h"
#include "unit.h"

static void hex(const uint8_t *d, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void digest_of(const void *p, size_t n, char out[65])
{
    struct sha256 s;
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_init(&s);
    sha256_update(&s, p, n);
    sha256_final(&s, d);
    hex(d, SHA256_DIGEST_LEN, out);
}

static void test_sha256(void)
{
    static const struct { const char *in, *want; } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
        { "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
          "klmnopqrlmnopqrsmnopqrstnopqrstu",
          "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
    };
    char got[65];
    for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        digest_of(v[i].in, strlen(v[i].in), got);
        CHECK(!strcmp(got, v[i].want), "sha256('%s') = %s", v[i].in, got);
    }
    /* a million 'a's, fed in uneven pieces */
    struct sha256 s;
    uint8_t d[SHA256_DIGEST_LEN];
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    sha256_init(&s);
    for (size_t off = 0, k = 1; off < 1000000; off += k, k = k * 3 % 1000 + 1)
        sha256_update(&s, a + off, off + k > 1000000 ? 1000000 - off : k);
    sha256_final(&s, d);
    hex(d, SHA256_DIGEST_LEN, got);
    CHECK(!strcmp(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
          "a million 'a's: %s", got);
    free(a);
    /* every split of 200 bytes gives the one-shot digest */
    uint8_t msg[200];
    char one[65];
    for (unsigned i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    digest_of(msg, sizeof(msg), one);
    for (unsigned cut = 0; cut <= sizeof(msg); cut++) {
        sha256_init(&s);
        sha256_update(&s, msg, cut);
        sha256_update(&s, msg + cut, sizeof(msg) - cut);
        sha256_final(&s, d);
        hex(d, SHA256_DIGEST_LEN, got);
        CHECK(!strcmp(got, one), "split at %u", cut);
    }
}

/* --- imports ------------------------------------------------------------------- */

static char base_dir[] = "/tmp/petrel-test-vm-image.XXXXXX";

#define SRC_SIZE ((8u << 20) + 1000u)   /* not a multiple of a block */

static void write_at(const char *path, const void *p, size_t n, off_t off)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0 && pwrite(fd, p, n, off) == (ssize_t)n, "write %s", path);
    close(fd);
}

/* An 8 MiB raw image: holes, data, a written block of zeros, a tail. */
static void make_src(const char *path)
{
    uint8_t buf[8192];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, SRC_SIZE) == 0, "create %s", path);
    close(fd);
    memset(buf, 0x5a, sizeof(buf));
    write_at(path, buf, sizeof(buf), 1 << 20);
    memset(buf, 0, sizeof(buf));
    write_at(path, buf, sizeof(buf), 3 << 20);      /* allocated zeros */
    write_at(path, "petrel", 6, (5 << 20) + 100);
    write_at(path, "end", 3, SRC_SIZE - 3);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*len ? *len : 1);
    if (fread(p, 1, *len, f) != *len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

static unsigned count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    unsigned n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += !strncmp(de->d_name, prefix, strlen(prefix)) && strcmp(de->d_name, ".") &&
             strcmp(de->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void test_import(void)
{
    char images[PATH_MAX], src[PATH_MAX], src2[PATH_MAX], want[PATH_MAX + 64], want2[PATH_MAX + 64];
    char sources[PATH_MAX + 16];
    snprintf(images, sizeof(images), "%s/state/images", base_dir);
    snprintf(sources, sizeof(sources), "%s/sources", images);
    snprintf(src, sizeof(src), "%s/root.img", base_dir);
    snprintf(src2, sizeof(src2), "%s/copy.img", base_dir);
    make_src(src);
    size_t n, m;
    uint8_t *content = read_all(src, &n);
    CHECK(content && n == SRC_SIZE, "read the source");
    char digest[65];
    digest_of(content, n, digest);
    snprintf(want, sizeof(want), "%s/riscv64-%.16s.raw", images, digest);

    char *out = NULL;
    bool imported = false;
    struct err e = { "" };
    int r = vm_image_import(images, "riscv64", src, &out, &imported, &e);
    CHECK(r == 0 && out && imported, "first import: %d %s", r, e.msg);
    CHECK(out && !strcmp(out, want), "named by its hash: %s, want %s", out, want);
    struct stat st;
    CHECK(stat(want, &st) == 0 && (st.st_mode & 0777) == 0444, "mode 0444: %o",
          (unsigned)st.st_mode & 0777);
    CHECK(st.st_size == SRC_SIZE, "size %lld", (long long)st.st_size);
    CHECK(st.st_blocks * 512 <= 64 * 1024, "sparse: %lld bytes allocated",
          (long long)st.st_blocks * 512);
    CHECK(stat(images, &st) == 0 && (st.st_mode & 0777) == 0700, "images/ is 0700");
    uint8_t *copy = read_all(want, &m);
    CHECK(copy && m == n && !memcmp(copy, content, n), "the copy is byte-identical");
    free(copy);
    CHECK(count_entries(sources, "") == 1, "one record");
    free(out);

    /* the same source again: the record answers */
    r = vm_image_import(images, "riscv64", src, &out, &imported, &e);
    CHECK(r == 0 && !imported && out && !strcmp(out, want), "again: %d %s", r, e.msg);
    free(out);
    /* the same content elsewhere: stored once */
    write_at(src2, content, n, 0);
    r = vm_image_import(images, "riscv64", src2, &out, &imported, &e);
    CHECK(r == 0 && !imported && out && !strcmp(out, want), "a copy elsewhere: %d %s", r,
          e.msg);
    free(out);
    CHECK(count_entries(sources, "") == 2, "a record per source");
    /* a malformed record is ignored; the content is found again */
    DIR *d = opendir(sources);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char p[PATH_MAX + 300];
        snprintf(p, sizeof(p), "%s/%s", sources, de->d_name);
        if (de->d_name[0] != '.') {
            FILE *f = fopen(p, "w");
            fputs("{\"source\": 42", f);
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    r = vm_image_import(images, "riscv64", src, &out, &imported, &e);
    CHECK(r == 0 && !imported && out && !strcmp(out, want), "bad record: %d %s", r, e.msg);
    free(out);
    /* another arch: its own image */
    r = vm_image_import(images, "x86_64", src, &out, &imported, &e);
    snprintf(want2, sizeof(want2), "%s/x86_64-%.16s.raw", images, digest);
    CHECK(r == 0 && imported && out && !strcmp(out, want2), "x86_64: %d %s %s", r, e.msg, out);
    free(out);

    /* new content: a new image; the old one stays */
    write_at(src, "X", 1, 0);
    r = vm_image_import(images, "riscv64", src, &out, &imported, &e);
    CHECK(r == 0 && imported && out && strcmp(out, want) && strstr(out, "/riscv64-"),
          "rebuilt source: %d %s", r, e.msg);
    free(out);
    CHECK(stat(want, &st) == 0, "the old image stays");
    CHECK(count_entries(images, ".import") == 0, "no temporary file left");
    CHECK(count_entries(images, "riscv64-") == 2 && count_entries(images, "x86_64-") == 1,
          "three images");
    free(content);
}

static void test_qcow2(void)
{
    char images[PATH_MAX], q1[PATH_MAX], q2[PATH_MAX], raw[PATH_MAX];
    snprintf(images, sizeof(images), "%s/state/images", base_dir);
    snprintf(q1, sizeof(q1), "%s/plain.qcow2", base_dir);
    snprintf(q2, sizeof(q2), "%s/overlay.qcow2", base_dir);
    snprintf(raw, sizeof(raw), "%s/root.img", base_dir);
    struct err e = { "" };
    struct qimg_create_opts o = { .fmt = "qcow2", .size = 1 << 30 };
    CHECK(qimg_create(q1, &o, &e) == 0, "create %s: %s", q1, e.msg);
    char *out = NULL;
    bool imported;
    int r = vm_image_import(images, "riscv64", q1, &out, &imported, &e);
    CHECK(r == 0 && imported && out && strlen(out) > 6 &&
          !strcmp(out + strlen(out) - 6, ".qcow2"), "qcow2 base: %d %s %s", r, e.msg, out);
    struct qimg *q = NULL;
    CHECK(out && qimg_open(&q, out, NULL, true, &e) == 0 && !q->raw && q->size == 1 << 30,
          "the copy opens as qcow2: %s", e.msg);
    if (q)
        qimg_close(q);
    free(out);

    struct qimg_create_opts ov = { .fmt = "qcow2", .size = 16 << 20, .backing = raw,
                                   .backing_fmt = "raw" };
    CHECK(qimg_create(q2, &ov, &e) == 0, "create %s: %s", q2, e.msg);
    r = vm_image_import(images, "riscv64", q2, &out, &imported, &e);
    CHECK(r < 0 && !out && strstr(e.msg, "backing file") && strstr(e.msg, "flatten"),
          "a qcow2 with a backing file: %d %s", r, e.msg);

    char missing[PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/missing.img", base_dir);
    r = vm_image_import(images, "riscv64", missing, &out, &imported, &e);
    CHECK(r == -ENOENT && !out && strstr(e.msg, "missing.img"), "missing: %d %s", r, e.msg);
    CHECK(count_entries(images, ".import") == 0, "no temporary file left");
}

static int rm_tree(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

int main(void)
{
    test_sha256();
    if (!mkdtemp(base_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_import();
    test_qcow2();
    rm_tree(base_dir);
    return unit_done("test_vm_image");
}
