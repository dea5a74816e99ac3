/* Helpers for unit tests of snapshot state (core/snapshot.h): finish a
 * writer into a parsed state, and rebuild a parsed state with one section
 * cut short or patched (the checksum made right again), so a test can feed
 * a device exactly the bad field it wants to.  Include after unit.h. */
#ifndef PETREL_TEST_SNAP_UTIL_H
#define PETREL_TEST_SNAP_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/snapshot.h"

static char snap_test_dir[64];

static inline const char *snap_test_path(void)
{
    static char p[128];
    if (!snap_test_dir[0]) {
        strcpy(snap_test_dir, "/tmp/petrel-snaptest-XXXXXX");
        CHECK(mkdtemp(snap_test_dir) != NULL, "mkdtemp");
    }
    snprintf(p, sizeof(p), "%s/state", snap_test_dir);
    return p;
}

static inline void snap_test_cleanup(void)
{
    if (snap_test_dir[0]) {
        unlink(snap_test_path());
        rmdir(snap_test_dir);
    }
}

/* Write w out (the file is also left in w->buf) and parse it into f. */
static inline int snap_test_finish(struct snap_writer *w, struct snap_file *f, struct err *e)
{
    struct snap_header h = { .petrel_version = "test", .arch = "riscv64", .mem_size = 1 << 22,
                             .cpus = 1 };
    int ret = snapw_write_file(w, &h, snap_test_path(), e);
    if (ret < 0)
        return ret;
    return snap_file_parse(f, w->buf, w->len, "state", e);
}

/* A copy of `in` whose section `name` keeps only its first `keep` bytes
 * (SIZE_MAX: all), with n bytes at `off` replaced by p (n = 0: none). */
static inline int snap_test_edit(const struct snap_file *in, const char *name, size_t keep,
                                 size_t off, const void *p, size_t n, struct snap_file *out)
{
    struct snap_writer w;
    struct err e;
    snapw_init(&w);
    bool found = false;
    for (unsigned i = 0; i < in->nsec; i++) {
        const struct snap_section *s = &in->sec[i];
        snapw_section(&w, s->name, s->version);
        if (strcmp(s->name, name)) {
            snapw_bytes(&w, s->data, s->len);
            continue;
        }
        found = true;
        size_t len = keep < s->len ? keep : s->len;
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, s->data, len);
        if (n) {
            CHECK(off + n <= len, "patch at %zu+%zu outside section %s (%zu bytes)", off, n,
                  name, len);
            if (off + n <= len)
                memcpy(copy + off, p, n);
        }
        snapw_bytes(&w, copy, len);
        free(copy);
    }
    CHECK(found, "no section %s", name);
    int ret = snap_test_finish(&w, out, &e);
    CHECK(ret == 0, "rebuild: %s", e.msg);
    snapw_free(&w);
    return ret;
}

static inline int snap_test_patch(const struct snap_file *in, const char *name, size_t off,
                                  const void *p, size_t n, struct snap_file *out)
{
    return snap_test_edit(in, name, SIZE_MAX, off, p, n, out);
}

/* Whether e's message contains want. */
static inline bool snap_test_msg(const struct err *e, const char *want)
{
    bool ok = strstr(e->msg, want) != NULL;
    if (!ok)
        printf("  message: '%s' (wanted '%s')\n", e->msg, want);
    return ok;
}

#endif
