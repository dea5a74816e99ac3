/* Unit tests for the snapshot state container (src/core/snapshot.c): a
 * write/read round trip of every field type through a real file (header,
 * sections, padding, strings, NULL strings); the container checks (not a
 * state file, other format version, checksum after a bit flip anywhere,
 * truncation, a missing end marker, stray bytes, a section twice, bad
 * section names and lengths, too many sections); the reader's bounds (a
 * short section sets fail and every later read is 0, a failed check, bytes
 * left over, a non-boolean, strings too long or holding NUL); section
 * lookup (missing, version range, used marks and snap_file_check_used);
 * writer failures (snapw_fail keeps the first, write_file returns it and
 * writes nothing); deferred actions (run in order by commit, stop at the
 * first failure, at most 32). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/snapshot.h"

#include "unit.h"

#include "snap_test_util.h"

static const struct snap_header hdr = { .petrel_version = "0.9-test", .arch = "riscv64",
                                        .mem_size = 512ull << 20, .cpus = 2,
                                        .flags = SNAP_DIFF, .created_ns = 1234567890123ull };

/* A state with two sections of every field type. */
static void write_sample(struct snap_writer *w)
{
    snapw_init(w);
    snapw_section(w, "alpha", 3);
    snapw_u8(w, 0xab);
    snapw_u16(w, 0xcdef);
    snapw_u32(w, 0x01234567);
    snapw_u64(w, 0x89abcdef01234567ull);
    snapw_bool(w, true);
    snapw_bool(w, false);
    snapw_str(w, "hello");
    snapw_str(w, NULL);
    snapw_str(w, "");
    snapw_section(w, "beta", 1);
    uint8_t b[13];
    for (unsigned i = 0; i < sizeof(b); i++)
        b[i] = (uint8_t)(i * 17);
    snapw_bytes(w, b, sizeof(b));
    snapw_section(w, "empty", 1);
}

static void test_round_trip(void)
{
    struct snap_writer w;
    struct err e = { "" };
    write_sample(&w);
    const char *path = snap_test_path();
    EQ(snapw_write_file(&w, &hdr, path, &e), 0);
    struct stat st;
    EQ(stat(path, &st), 0);
    EQ(st.st_size, w.len);
    EQ(st.st_size % 8, 0);
    EQ(st.st_mode & 0777, 0600);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CHECK(access(tmp, F_OK) < 0, "temporary file left behind");
    snapw_free(&w);

    struct snap_file f;
    int ret = snap_file_read(&f, path, &e);
    CHECK(ret == 0, "read: %s", e.msg);
    CHECK(!strcmp(f.h.petrel_version, "0.9-test"), "version '%s'", f.h.petrel_version);
    CHECK(!strcmp(f.h.arch, "riscv64"), "arch '%s'", f.h.arch);
    EQ(f.h.mem_size, 512ull << 20);
    EQ(f.h.cpus, 2);
    EQ(f.h.flags, SNAP_DIFF);
    EQ(f.h.created_ns, 1234567890123ull);
    EQ(f.nsec, 3);
    CHECK(snap_file_has(&f, "beta") && !snap_file_has(&f, "gamma"), "has");

    /* sections are found by name, in any order */
    struct snap_reader r;
    EQ(snap_section(&f, "beta", 1, 1, &r, &e), 0);
    uint8_t b[13];
    snapr_bytes(&r, b, sizeof(b));
    for (unsigned i = 0; i < sizeof(b); i++)
        EQ(b[i], (uint8_t)(i * 17));
    EQ(snapr_end(&r, &e), 0);

    EQ(snap_section(&f, "alpha", 2, 4, &r, &e), 0);
    EQ(r.version, 3);
    EQ(snapr_u8(&r), 0xab);
    EQ(snapr_u16(&r), 0xcdef);
    EQ(snapr_u32(&r), 0x01234567);
    EQ(snapr_u64(&r), 0x89abcdef01234567ull);
    EQ(snapr_bool(&r), true);
    EQ(snapr_bool(&r), false);
    char *s = NULL;
    EQ(snapr_str(&r, 16, &s), 0);
    CHECK(s && !strcmp(s, "hello"), "str");
    free(s);
    EQ(snapr_str(&r, 16, &s), 0);
    CHECK(s == NULL, "NULL string");
    EQ(snapr_str(&r, 16, &s), 0);
    CHECK(s && !*s, "empty string");
    free(s);
    EQ(snapr_end(&r, &e), 0);

    /* before "empty" is loaded, it is reported unused */
    e.msg[0] = 0;
    CHECK(snap_file_check_used(&f, &e) == -EINVAL && snap_test_msg(&e, "'empty'"), "unused");
    EQ(snap_section(&f, "empty", 1, 1, &r, &e), 0);
    EQ(snapr_end(&r, &e), 0);
    EQ(snap_file_check_used(&f, &e), 0);

    /* lookup errors */
    CHECK(snap_section(&f, "gamma", 1, 1, &r, &e) == -EINVAL &&
          snap_test_msg(&e, "no state for 'gamma'"), "missing section");
    CHECK(snap_section(&f, "alpha", 4, 5, &r, &e) == -EINVAL &&
          snap_test_msg(&e, "version 3"), "version range");
    snap_file_free(&f);
}

static void test_reader_bounds(void)
{
    struct snap_writer w;
    struct snap_file f;
    struct err e = { "" };
    snapw_init(&w);
    snapw_section(&w, "s", 1);
    snapw_u32(&w, 7);
    snapw_u8(&w, 2);                /* not a boolean */
    snapw_u32(&w, 100);             /* a string length beyond the section */
    EQ(snap_test_finish(&w, &f, &e), 0);
    snapw_free(&w);

    struct snap_reader r;
    /* a short section: fail is sticky and later reads give 0 */
    EQ(snap_section(&f, "s", 1, 1, &r, &e), 0);
    EQ(snapr_u32(&r), 7);
    EQ(snapr_u32(&r), 0x00006402);      /* reads what is there, little endian */
    EQ(snapr_u64(&r), 0);               /* past the end */
    CHECK(r.fail, "fail set");
    EQ(snapr_u8(&r), 0);                /* sticky */
    CHECK(snapr_end(&r, &e) == -EINVAL && snap_test_msg(&e, "shorter than its fields"), "short");

    /* a non-boolean */
    EQ(snap_section(&f, "s", 1, 1, &r, &e), 0);
    snapr_u32(&r);
    EQ(snapr_bool(&r), false);
    CHECK(snapr_end(&r, &e) == -EINVAL && snap_test_msg(&e, "neither 0 nor 1"), "bool");

    /* a string running past the section */
    EQ(snap_section(&f, "s", 1, 1, &r, &e), 0);
    snapr_u32(&r);
    snapr_u8(&r);
    char *s = (char *)1;
    EQ(snapr_str(&r, SNAP_MAX_STR, &s), -1);
    CHECK(s == NULL, "no string");
    CHECK(snapr_end(&r, &e) == -EINVAL, "string past the end");

    /* bytes left over */
    EQ(snap_section(&f, "s", 1, 1, &r, &e), 0);
    snapr_u32(&r);
    CHECK(snapr_end(&r, &e) == -EINVAL && snap_test_msg(&e, "5 unexpected bytes"), "leftover");

    /* the first failed check is the one reported */
    EQ(snap_section(&f, "s", 1, 1, &r, &e), 0);
    snapr_u32(&r);
    snapr_u8(&r);
    snapr_u32(&r);
    CHECK(snapr_check(&r, true, "fine"), "true check");
    CHECK(!snapr_check(&r, false, "first problem"), "false check");
    snapr_check(&r, false, "second problem");
    CHECK(snapr_end(&r, &e) == -EINVAL && snap_test_msg(&e, "first problem"), "first kept");
    snap_file_free(&f);

    /* strings: too long for the caller's limit, holding a NUL */
    snapw_init(&w);
    snapw_section(&w, "t", 1);
    snapw_str(&w, "0123456789");
    snapw_u32(&w, 3);
    snapw_bytes(&w, "a\0b", 3);
    EQ(snap_test_finish(&w, &f, &e), 0);
    snapw_free(&w);
    EQ(snap_section(&f, "t", 1, 1, &r, &e), 0);
    EQ(snapr_str(&r, 9, &s), -1);
    CHECK(snapr_end(&r, &e) == -EINVAL && snap_test_msg(&e, "too long"), "long string");
    EQ(snap_section(&f, "t", 1, 1, &r, &e), 0);
    EQ(snapr_str(&r, 10, &s), 0);
    free(s);
    EQ(snapr_str(&r, 10, &s), -1);
    CHECK(snapr_end(&r, &e) == -EINVAL && snap_test_msg(&e, "NUL"), "NUL in a string");
    snap_file_free(&f);
}

/* Parse a damaged copy; expect -EINVAL with `want` in the message. */
static void expect_bad(const uint8_t *buf, size_t len, const char *want, const char *what)
{
    struct snap_file f;
    struct err e = { "" };
    int ret = snap_file_parse(&f, buf, len, "state", &e);
    CHECK(ret == -EINVAL && snap_test_msg(&e, want), "%s: ret %d", what, ret);
    if (ret == 0)
        snap_file_free(&f);
    CHECK(f.buf == NULL && f.sec == NULL, "%s: nothing kept", what);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Make the checksum right again after an edit. */
static void reseal(uint8_t *buf, size_t len)
{
    put32(buf + len - 8, (uint32_t)crc32(0, buf, (uInt)(len - 8)));
}

static void test_container_errors(void)
{
    struct snap_writer w;
    struct err e = { "" };
    write_sample(&w);
    EQ(snapw_write_file(&w, &hdr, snap_test_path(), &e), 0);
    size_t len = w.len;
    uint8_t *good = w.buf, *b = malloc(len);

    /* every single bit flip is caught by the checksum (or the markers) */
    unsigned caught = 0;
    for (size_t i = 0; i < len; i++)
        for (unsigned bit = 0; bit < 8; bit += 3) {
            memcpy(b, good, len);
            b[i] ^= (uint8_t)(1u << bit);
            struct snap_file f;
            if (snap_file_parse(&f, b, len, "state", &e) == -EINVAL)
                caught++;
            else
                snap_file_free(&f);
        }
    EQ(caught, len * 3);
    memcpy(b, good, len);
    b[len / 2] ^= 4;
    expect_bad(b, len, "checksum mismatch", "bit flip");

    /* truncation, anywhere */
    for (size_t cut = 0; cut < len; cut += 7)
        expect_bad(good, cut, "", "truncated");
    expect_bad(good, len - 1, "truncated", "one byte short");
    expect_bad(good, 10, "not a Petrel snapshot", "tiny");

    memcpy(b, good, len);
    b[0] = 'X';
    expect_bad(b, len, "not a Petrel snapshot", "magic");
    memcpy(b, good, len);
    put32(b + 8, 2);
    reseal(b, len);
    expect_bad(b, len, "state format version 2", "format version");
    memcpy(b, good, len);
    put32(b + 72, 7);
    reseal(b, len);
    expect_bad(b, len, "unknown snapshot type", "flags");
    memcpy(b, good, len);
    b[16] = 1;
    reseal(b, len);
    expect_bad(b, len, "bad version string", "version string");
    memcpy(b, good, len);
    put32(b + 60, SNAP_MAX_SECTIONS + 1);
    reseal(b, len);
    expect_bad(b, len, "sections (at most", "too many sections");
    memcpy(b, good, len);
    put32(b + 60, 2);                   /* one section is left over */
    reseal(b, len);
    expect_bad(b, len, "stray bytes", "fewer sections");
    memcpy(b, good, len);
    put32(b + 60, 4);                   /* one more than there is */
    reseal(b, len);
    expect_bad(b, len, "section 3: truncated", "more sections");

    /* the first section's length beyond the file; its name bad */
    size_t s0 = SNAP_HEADER_SIZE;
    memcpy(b, good, len);
    put32(b + s0 + 32, 1u << 20);
    reseal(b, len);
    expect_bad(b, len, "bad name or length", "section length");
    memcpy(b, good, len);
    b[s0] = ' ';
    reseal(b, len);
    expect_bad(b, len, "bad name or length", "section name");
    memcpy(b, good, len);
    b[s0] = 0;
    reseal(b, len);
    expect_bad(b, len, "bad name or length", "empty section name");
    free(b);
    snapw_free(&w);

    /* a section twice */
    snapw_init(&w);
    snapw_section(&w, "dup", 1);
    snapw_u32(&w, 1);
    snapw_section(&w, "other", 1);
    snapw_section(&w, "dup", 1);
    EQ(snapw_write_file(&w, &hdr, snap_test_path(), &e), 0);
    expect_bad(w.buf, w.len, "'dup' appears twice", "duplicate");
    snapw_free(&w);

    /* not a regular file; missing */
    struct snap_file f;
    CHECK(snap_file_read(&f, "/", &e) < 0, "a directory");
    CHECK(snap_file_read(&f, "/nonexistent/state", &e) == -ENOENT, "missing");
}

static void test_writer_failure(void)
{
    struct snap_writer w;
    struct err e = { "" }, dev = { "" };
    snapw_init(&w);
    w.e = &dev;
    snapw_section(&w, "a", 1);
    snapw_u32(&w, 1);
    EQ(snapw_fail(&w, -EROFS, "disk %s is read-only", "x.img"), -EROFS);
    EQ(snapw_fail(&w, -EIO, "second"), -EIO);
    CHECK(!strcmp(dev.msg, "disk x.img is read-only"), "first failure kept: '%s'", dev.msg);
    unlink(snap_test_path());
    EQ(snapw_write_file(&w, &hdr, snap_test_path(), &e), -EROFS);
    CHECK(access(snap_test_path(), F_OK) < 0, "nothing written");
    snapw_free(&w);

    /* a state that would exceed the size limit fails cleanly */
    snapw_init(&w);
    snapw_section(&w, "big", 1);
    uint8_t *chunk = calloc(1, 1 << 20);
    for (unsigned i = 0; i < (SNAP_MAX_STATE >> 20) + 1; i++)
        snapw_bytes(&w, chunk, 1 << 20);
    free(chunk);
    int ret = snapw_write_file(&w, &hdr, snap_test_path(), &e);
    CHECK(ret == -EFBIG || ret == -ENOMEM, "too large: %d", ret);
    CHECK(access(snap_test_path(), F_OK) < 0, "nothing written");
    snapw_free(&w);

    /* an empty state (no sections) is valid */
    struct snap_file f;
    snapw_init(&w);
    EQ(snap_test_finish(&w, &f, &e), 0);
    EQ(f.nsec, 0);
    EQ(snap_file_check_used(&f, &e), 0);
    snap_file_free(&f);
    snapw_free(&w);
}

static int calls[40], ncalls;

static int act(void *opaque, struct err *e)
{
    int id = (int)(intptr_t)opaque;
    calls[ncalls++] = id;
    return id == 99 ? err_set(e, -EIO, "action %d failed", id) : 0;
}

static void test_defer(void)
{
    struct snap_file f;
    struct err e = { "" };
    memset(&f, 0, sizeof(f));
    EQ(snap_file_defer(&f, act, (void *)(intptr_t)1, &e), 0);
    EQ(snap_file_defer(&f, act, (void *)(intptr_t)2, &e), 0);
    EQ(ncalls, 0);                      /* nothing runs before commit */
    EQ(snap_file_commit(&f, &e), 0);
    EQ(ncalls, 2);
    EQ(calls[0], 1);
    EQ(calls[1], 2);
    EQ(f.ndefer, 0);
    ncalls = 0;
    EQ(snap_file_defer(&f, act, (void *)(intptr_t)99, &e), 0);
    EQ(snap_file_defer(&f, act, (void *)(intptr_t)3, &e), 0);
    CHECK(snap_file_commit(&f, &e) == -EIO && snap_test_msg(&e, "action 99"), "failure");
    EQ(ncalls, 1);                      /* stopped at the failure */
    memset(&f, 0, sizeof(f));
    for (unsigned i = 0; i < 32; i++)
        EQ(snap_file_defer(&f, act, (void *)(intptr_t)i, &e), 0);
    EQ(snap_file_defer(&f, act, NULL, &e), -ENOSPC);
}

int main(void)
{
    test_round_trip();
    test_reader_bounds();
    test_container_errors();
    test_writer_failure();
    test_defer();
    snap_test_cleanup();
    return unit_done("test_snapshot");
}
