#include "core/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/le.h"

/* --- writer --- */
void snapw_init(struct snap_writer *w)
{
    memset(w, 0, sizeof(*w));
}

void snapw_free(struct snap_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

static uint8_t *grow(struct snap_writer *w, size_t n)
{
    if (w->oom)
        return NULL;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 65536;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *b = cap <= SNAP_MAX_STATE * 2ull ? realloc(w->buf, cap) : NULL;
        if (!b) {
            w->oom = true;
            return NULL;
        }
        w->buf = b;
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

static void close_section(struct snap_writer *w)
{
    if (!w->sec_hdr || w->oom)
        return;
    uint64_t len = w->len - (w->sec_hdr + SNAP_SECTION_HDR);
    put_le(w->buf + w->sec_hdr + 32, len, 8);
    size_t pad = (8 - (w->len & 7)) & 7;
    uint8_t *p = grow(w, pad);
    if (p)
        memset(p, 0, pad);
    w->sec_hdr = 0;
}

void snapw_section(struct snap_writer *w, const char *name, uint32_t version)
{
    close_section(w);
    if (w->len == 0 && !grow(w, SNAP_HEADER_SIZE))   /* room for the header */
        return;
    size_t at = w->len;
    uint8_t *p = grow(w, SNAP_SECTION_HDR);
    if (!p)
        return;
    memset(p, 0, SNAP_SECTION_HDR);
    memcpy(p, name, strnlen(name, SNAP_NAME_LEN));
    put_le(p + 24, version, 4);
    w->sec_hdr = at;
    w->nsections++;
}

static void put(struct snap_writer *w, uint64_t v, unsigned n)
{
    uint8_t *p = grow(w, n);
    if (p)
        put_le(p, v, n);
}

void snapw_u8(struct snap_writer *w, uint8_t v) { put(w, v, 1); }
void snapw_u16(struct snap_writer *w, uint16_t v) { put(w, v, 2); }
void snapw_u32(struct snap_writer *w, uint32_t v) { put(w, v, 4); }
void snapw_u64(struct snap_writer *w, uint64_t v) { put(w, v, 8); }
void snapw_bool(struct snap_writer *w, bool v) { put(w, v ? 1 : 0, 1); }

void snapw_bytes(struct snap_writer *w, const void *src, size_t len)
{
    uint8_t *p = grow(w, len);
    if (p && len)
        memcpy(p, src, len);
}

void snapw_str(struct snap_writer *w, const char *s)
{
    if (!s) {
        snapw_u32(w, 0xffffffffu);
        return;
    }
    size_t n = strlen(s);
    snapw_u32(w, (uint32_t)n);
    snapw_bytes(w, s, n);
}

int snapw_fail(struct snap_writer *w, int ret, const char *fmt, ...)
{
    if (!w->failed) {
        w->failed = ret;
        va_list ap;
        va_start(ap, fmt);
        err_vset(w->e, ret, fmt, ap);
        va_end(ap);
    }
    return ret;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int snapw_write_file(struct snap_writer *w, const struct snap_header *h, const char *path,
                     struct err *e)
{
    if (w->failed)
        return w->failed;
    close_section(w);
    if (w->len == 0 && !grow(w, SNAP_HEADER_SIZE))
        return err_set(e, -ENOMEM, "out of memory writing the snapshot state");
    uint8_t *t = grow(w, 8);
    if (w->oom || !t || w->len > SNAP_MAX_STATE)
        return err_set(e, w->oom ? -ENOMEM : -EFBIG, "snapshot state too large (%zu bytes)",
                       w->len);
    uint8_t *p = w->buf;
    memset(p, 0, SNAP_HEADER_SIZE);
    memcpy(p, SNAP_MAGIC, 8);
    put_le(p + 8, SNAP_FORMAT_VERSION, 4);
    put_le(p + 12, SNAP_HEADER_SIZE, 4);
    memcpy(p + 16, h->petrel_version, strnlen(h->petrel_version, 15));
    memcpy(p + 32, h->arch, strnlen(h->arch, 15));
    put_le(p + 48, h->mem_size, 8);
    put_le(p + 56, h->cpus, 4);
    put_le(p + 60, w->nsections, 4);
    put_le(p + 64, h->created_ns, 8);
    put_le(p + 72, h->flags, 4);
    size_t body = w->len - 8;
    put_le(w->buf + body, crc32(0, w->buf, (uInt)body), 4);
    memcpy(w->buf + body + 4, SNAP_END_MAGIC, 4);

    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return err_set(e, -ENAMETOOLONG, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(e, -errno, "%s: %s", tmp, strerror(errno));
    int ret = write_all(fd, w->buf, w->len);
    if (ret == 0 && fsync(fd) < 0)
        ret = -errno;
    close(fd);
    if (ret == 0 && rename(tmp, path) < 0)
        ret = -errno;
    if (ret < 0) {
        unlink(tmp);
        return err_set(e, ret, "cannot write %s: %s", path, strerror(-ret));
    }
    return 0;
}

/* --- reader --- */
int snap_file_parse(struct snap_file *f, const void *src, size_t len, const char *what,
                    struct err *e)
{
    memset(f, 0, sizeof(*f));
    f->path = what;
    if (len < SNAP_HEADER_SIZE + 8 || memcmp(src, SNAP_MAGIC, 8) != 0)
        return err_set(e, -EINVAL, "%s: not a Petrel snapshot state file", what);
    if (len > SNAP_MAX_STATE)
        return err_set(e, -EINVAL, "%s: larger than %u MiB", what, SNAP_MAX_STATE >> 20);
    const uint8_t *p = src;
    uint32_t ver = (uint32_t)get_le(p + 8, 4);
    if (ver != SNAP_FORMAT_VERSION)
        return err_set(e, -EINVAL, "%s: state format version %u, this Petrel reads version %u",
                       what, ver, SNAP_FORMAT_VERSION);
    if (get_le(p + 12, 4) != SNAP_HEADER_SIZE)
        return err_set(e, -EINVAL, "%s: bad header size", what);
    if (memcmp(p + len - 4, SNAP_END_MAGIC, 4) != 0)
        return err_set(e, -EINVAL, "%s: truncated (no end marker)", what);
    uint32_t crc = (uint32_t)get_le(p + len - 8, 4);
    if (crc32(0, p, (uInt)(len - 8)) != crc)
        return err_set(e, -EINVAL, "%s: checksum mismatch (the file is damaged)", what);
    struct snap_header h = { 0 };
    memcpy(h.petrel_version, p + 16, 15);
    memcpy(h.arch, p + 32, 15);
    for (unsigned i = 0; i < 15; i++) {   /* printable ASCII only: safe to print */
        if (h.petrel_version[i] && (h.petrel_version[i] < 0x20 || h.petrel_version[i] > 0x7e))
            return err_set(e, -EINVAL, "%s: bad version string", what);
        if (h.arch[i] && (h.arch[i] < 0x20 || h.arch[i] > 0x7e))
            return err_set(e, -EINVAL, "%s: bad architecture string", what);
    }
    h.mem_size = get_le(p + 48, 8);
    h.cpus = (uint32_t)get_le(p + 56, 4);
    uint32_t nsec = (uint32_t)get_le(p + 60, 4);
    h.created_ns = get_le(p + 64, 8);
    h.flags = (uint32_t)get_le(p + 72, 4);
    if (h.flags > SNAP_DIFF)
        return err_set(e, -EINVAL, "%s: unknown snapshot type %u", what, h.flags);
    if (nsec > SNAP_MAX_SECTIONS)
        return err_set(e, -EINVAL, "%s: %u sections (at most %u)", what, nsec, SNAP_MAX_SECTIONS);
    f->buf = malloc(len);
    f->sec = calloc(nsec ? nsec : 1, sizeof(*f->sec));
    if (!f->buf || !f->sec) {
        snap_file_free(f);
        return err_set(e, -ENOMEM, "out of memory");
    }
    memcpy(f->buf, src, len);
    f->len = len;
    f->h = h;
    size_t off = SNAP_HEADER_SIZE, end = len - 8;
    for (unsigned i = 0; i < nsec; i++) {
        struct snap_section *s = &f->sec[i];
        if (end - off < SNAP_SECTION_HDR) {
            snap_file_free(f);
            return err_set(e, -EINVAL, "%s: section %u: truncated", what, i);
        }
        const uint8_t *q = f->buf + off;
        memcpy(s->name, q, SNAP_NAME_LEN);
        s->name[SNAP_NAME_LEN] = 0;
        bool ok = s->name[0] != 0;
        for (unsigned k = 0; k < SNAP_NAME_LEN && s->name[k]; k++)
            ok = ok && s->name[k] > 0x20 && s->name[k] < 0x7f;
        s->version = (uint32_t)get_le(q + 24, 4);
        s->len = get_le(q + 32, 8);
        off += SNAP_SECTION_HDR;
        uint64_t padded = (s->len + 7) & ~7ull;
        if (!ok || s->len > end - off || padded > end - off) {
            snap_file_free(f);
            return err_set(e, -EINVAL, "%s: section %u: bad name or length", what, i);
        }
        for (unsigned k = 0; k < i; k++)
            if (strcmp(f->sec[k].name, s->name) == 0) {
                /* the message first: s lives in f->sec */
                int ret = err_set(e, -EINVAL, "%s: section '%s' appears twice", what, s->name);
                snap_file_free(f);
                return ret;
            }
        s->data = f->buf + off;
        off += padded;
        f->nsec = i + 1;
    }
    if (off != end) {
        snap_file_free(f);
        return err_set(e, -EINVAL, "%s: %zu stray bytes after the last section", what, end - off);
    }
    f->path = what;
    return 0;
}

int snap_file_read(struct snap_file *f, const char *path, struct err *e)
{
    memset(f, 0, sizeof(*f));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, -EINVAL, "%s: not a regular file", path);
    }
    if (st.st_size > SNAP_MAX_STATE) {
        close(fd);
        return err_set(e, -EINVAL, "%s: larger than %u MiB", path, SNAP_MAX_STATE >> 20);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return err_set(e, -ENOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    int ret = snap_file_parse(f, buf, got, path, e);
    free(buf);
    return ret;
}

void snap_file_free(struct snap_file *f)
{
    free(f->buf);
    free(f->sec);
    f->buf = NULL;
    f->sec = NULL;
    f->nsec = 0;
}

bool snap_file_has(const struct snap_file *f, const char *name)
{
    for (unsigned i = 0; i < f->nsec; i++)
        if (strcmp(f->sec[i].name, name) == 0)
            return true;
    return false;
}

int snap_file_check_used(const struct snap_file *f, struct err *e)
{
    for (unsigned i = 0; i < f->nsec; i++)
        if (!f->sec[i].used)
            return err_set(e, -EINVAL, "snapshot has state for '%s', which this VM does not have",
                           f->sec[i].name);
    return 0;
}

int snap_file_defer(struct snap_file *f, int (*fn)(void *opaque, struct err *e), void *opaque,
                    struct err *e)
{
    if (f->ndefer >= sizeof(f->defer) / sizeof(f->defer[0]))
        return err_set(e, -ENOSPC, "too many deferred snapshot actions");
    f->defer[f->ndefer].fn = fn;
    f->defer[f->ndefer].opaque = opaque;
    f->ndefer++;
    return 0;
}

int snap_file_commit(struct snap_file *f, struct err *e)
{
    for (unsigned i = 0; i < f->ndefer; i++) {
        int ret = f->defer[i].fn(f->defer[i].opaque, e);
        if (ret < 0)
            return ret;
    }
    f->ndefer = 0;
    return 0;
}

int snap_section(struct snap_file *f, const char *name, uint32_t min_ver, uint32_t max_ver,
                 struct snap_reader *r, struct err *e)
{
    memset(r, 0, sizeof(*r));
    for (unsigned i = 0; i < f->nsec; i++) {
        struct snap_section *s = &f->sec[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (s->version < min_ver || s->version > max_ver)
            return err_set(e, -EINVAL, "state file: '%s' has version %u, this Petrel reads %u..%u",
                           name, s->version, min_ver, max_ver);
        s->used = true;
        r->p = s->data;
        r->len = s->len;
        r->name = s->name;
        r->version = s->version;
        return 0;
    }
    return err_set(e, -EINVAL, "snapshot has no state for '%s' (the VM it was taken from "
                   "lacks it)", name);
}

static uint64_t get(struct snap_reader *r, unsigned n)
{
    if (r->fail || r->len - r->off < n) {
        r->fail = true;
        return 0;
    }
    uint64_t v = get_le(r->p + r->off, n);
    r->off += n;
    return v;
}

uint8_t snapr_u8(struct snap_reader *r) { return (uint8_t)get(r, 1); }
uint16_t snapr_u16(struct snap_reader *r) { return (uint16_t)get(r, 2); }
uint32_t snapr_u32(struct snap_reader *r) { return (uint32_t)get(r, 4); }
uint64_t snapr_u64(struct snap_reader *r) { return get(r, 8); }

bool snapr_bool(struct snap_reader *r)
{
    uint8_t v = snapr_u8(r);
    snapr_check(r, v <= 1, "a boolean is neither 0 nor 1");
    return v == 1;
}

void snapr_bytes(struct snap_reader *r, void *p, size_t len)
{
    if (r->fail || r->len - r->off < len) {
        r->fail = true;
        memset(p, 0, len);
        return;
    }
    memcpy(p, r->p + r->off, len);
    r->off += len;
}

int snapr_str(struct snap_reader *r, size_t max, char **out)
{
    *out = NULL;
    uint32_t n = snapr_u32(r);
    if (r->fail)
        return -1;
    if (n == 0xffffffffu)
        return 0;
    if (max > SNAP_MAX_STR)
        max = SNAP_MAX_STR;
    if (!snapr_check(r, n <= max, "a string is too long"))
        return -1;
    if (r->len - r->off < n) {
        r->fail = true;
        return -1;
    }
    if (memchr(r->p + r->off, 0, n)) {
        snapr_check(r, false, "a string holds a NUL byte");
        return -1;
    }
    char *s = malloc(n + 1);
    if (!s) {
        snapr_check(r, false, "out of memory");
        return -1;
    }
    memcpy(s, r->p + r->off, n);
    s[n] = 0;
    r->off += n;
    *out = s;
    return 0;
}

bool snapr_check(struct snap_reader *r, bool cond, const char *what)
{
    if (!cond && !r->bad[0])
        snprintf(r->bad, sizeof(r->bad), "%s", what);
    return cond;
}

int snapr_end(struct snap_reader *r, struct err *e)
{
    if (r->bad[0])
        return err_set(e, -EINVAL, "state file: '%s': %s", r->name, r->bad);
    if (r->fail)
        return err_set(e, -EINVAL, "state file: '%s' is shorter than its fields", r->name);
    if (r->off != r->len)
        return err_set(e, -EINVAL, "state file: '%s' has %llu unexpected bytes at its end",
                       r->name, (unsigned long long)(r->len - r->off));
    return 0;
}
