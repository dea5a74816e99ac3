/* Base images imported into the state directory.  See vm_image.h. */
#include "cli/vm_image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "block/qcow2.h"
#include "cli/sha256.h"
#include "cli/vm_def.h"

#define COPY_BLOCK (1u << 20)           /* bytes read at a time */
#define ZERO_BLOCK 4096u                /* all-zero blocks of this size are not written */
#define RECORD_DIR "sources"
#define RECORD_MAX 65536u               /* bytes of a record */

/* What identifies one version of a source file. */
struct src_id {
    int64_t dev, ino, size, mtime_ns, ctime_ns;
};

static void src_id_of(const struct stat *st, struct src_id *id)
{
    id->dev = (int64_t)st->st_dev;
    id->ino = (int64_t)st->st_ino;
    id->size = (int64_t)st->st_size;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    id->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

static bool src_id_eq(const struct src_id *a, const struct src_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* --- the records (images/sources/KEY.json) ------------------------------------ */

/* KEY: FNV-1a of arch, a NUL and the source's path. */
static void record_path(char *buf, size_t len, const char *images, const char *arch,
                        const char *src)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = arch;; p++) {
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
        if (!*p)
            break;
    }
    for (const char *p = src; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(buf, len, "%s/" RECORD_DIR "/%016llx.json", images, (unsigned long long)h);
}

/* ARCH-<16 lower-case hex digits>.raw or .qcow2 */
static bool image_name_valid(const char *name, const char *arch)
{
    size_t n = strlen(arch);
    if (strncmp(name, arch, n) || name[n] != '-')
        return false;
    const char *h = name + n + 1;
    for (unsigned i = 0; i < VM_IMAGE_HASH_HEX; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return false;
    return !strcmp(h + VM_IMAGE_HASH_HEX, ".raw") || !strcmp(h + VM_IMAGE_HASH_HEX, ".qcow2");
}

static bool json_int_is(json_t *o, const char *key, int64_t want)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && (int64_t)json_integer_value(v) == want;
}

/* The image the record for src names, when the record matches id and the
 * image is there (a regular file of the source's size); else NULL. */
static char *record_lookup(const char *images, const char *arch, const char *src,
                           const struct src_id *id)
{
    char rec[PATH_MAX + 64];
    struct stat st;
    record_path(rec, sizeof(rec), images, arch, src);
    if (stat(rec, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > RECORD_MAX)
        return NULL;
    json_t *j = json_load_file(rec, JSON_REJECT_DUPLICATES, NULL);
    const char *s = json_string_value(json_object_get(j, "source"));
    const char *a = json_string_value(json_object_get(j, "arch"));
    const char *name = json_string_value(json_object_get(j, "image"));
    char *path = NULL;
    if (json_is_object(j) && s && !strcmp(s, src) && a && !strcmp(a, arch) && name &&
        image_name_valid(name, arch) && json_int_is(j, "dev", id->dev) &&
        json_int_is(j, "ino", id->ino) && json_int_is(j, "size", id->size) &&
        json_int_is(j, "mtime_ns", id->mtime_ns) && json_int_is(j, "ctime_ns", id->ctime_ns) &&
        asprintf(&path, "%s/%s", images, name) >= 0) {
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != id->size) {
            free(path);
            path = NULL;
        }
    }
    json_decref(j);
    return path;
}

/* Remember that src (as id) gave the image name.  A record that cannot be
 * written only costs a copy next time. */
static void record_save(const char *images, const char *arch, const char *src,
                        const struct src_id *id, const char *name)
{
    char rec[PATH_MAX + 64], dir[PATH_MAX + 16];
    struct err e = { "" };
    snprintf(dir, sizeof(dir), "%s/" RECORD_DIR, images);
    if (vm_mkdir_p(dir, 0700, &e) < 0)
        return;
    record_path(rec, sizeof(rec), images, arch, src);
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "source", src,
                          "arch", arch, "image", name, "dev", (json_int_t)id->dev,
                          "ino", (json_int_t)id->ino, "size", (json_int_t)id->size,
                          "mtime_ns", (json_int_t)id->mtime_ns,
                          "ctime_ns", (json_int_t)id->ctime_ns);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        vm_write_file_atomic(rec, text, strlen(text), 0600, &e);
    free(text);
    json_decref(j);
}

/* --- the copy ------------------------------------------------------------------ */

static void hash_zeros(struct sha256 *h, uint64_t n)
{
    static const uint8_t zeros[ZERO_BLOCK * 16];
    while (n) {
        size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
        sha256_update(h, zeros, k);
        n -= k;
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Write the non-zero ZERO_BLOCKs of buf (n bytes of the image at off). */
static int write_nonzero(int out, const uint8_t *buf, size_t n, uint64_t off)
{
    size_t run = 0, i = 0;      /* [run, i): non-zero blocks not written yet */
    for (; i < n; i += ZERO_BLOCK) {
        size_t k = n - i < ZERO_BLOCK ? n - i : ZERO_BLOCK;
        if (!all_zero(buf + i, k))
            continue;
        if (i > run) {
            int r = pwrite_all(out, buf + run, i - run, off + run);
            if (r < 0)
                return r;
        }
        run = i + k;
    }
    return n > run ? pwrite_all(out, buf + run, n - run, off + run) : 0;
}

/* The next data extent at or after off: [*data, *end); *data == size when
 * there is none.  Without SEEK_DATA support everything is data. */
static int next_data(int fd, uint64_t off, uint64_t size, uint64_t *data, uint64_t *end)
{
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    if (d < 0 && errno == ENXIO) {
        *data = *end = size;
        return 0;
    }
    if (d < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
        *data = off;
        *end = size;
        return 0;
    }
    if (d < 0)
        return -errno;
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0)
        return -errno;
    *data = (uint64_t)d < size ? (uint64_t)d : size;
    *end = (uint64_t)h < size ? (uint64_t)h : size;
    return 0;
}

/* Copy size bytes of in to out sparsely, hashing all of them (holes as the
 * zeros they read as). */
static int copy_hash(int in, int out, uint64_t size, struct sha256 *h, const char *src,
                     const char *dst, struct err *e)
{
    uint8_t *buf = malloc(COPY_BLOCK);
    if (!buf)
        return err_set(e, -ENOMEM, "out of memory");
    int r = 0;
    for (uint64_t off = 0; off < size;) {
        uint64_t data = size, end = size;
        if ((r = next_data(in, off, size, &data, &end)) < 0) {
            r = err_set(e, r, "%s: lseek: %s", src, strerror(-r));
            break;
        }
        hash_zeros(h, data - off);
        for (off = data; off < end;) {
            size_t n = end - off < COPY_BLOCK ? (size_t)(end - off) : COPY_BLOCK;
            ssize_t got = pread(in, buf, n, (off_t)off);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0) {
                r = err_set(e, -errno, "%s: read: %s", src, strerror(errno));
                goto out;
            }
            if (got == 0) {
                r = err_set(e, -EAGAIN, "%s: changed while it was imported; try again", src);
                goto out;
            }
            sha256_update(h, buf, (size_t)got);
            if ((r = write_nonzero(out, buf, (size_t)got, off)) < 0) {
                r = err_set(e, r, "%s: write: %s", dst, strerror(-r));
                goto out;
            }
            off += (uint64_t)got;
        }
    }
    if (!r && ftruncate(out, (off_t)size) < 0)
        r = err_set(e, -errno, "%s: truncate: %s", dst, strerror(errno));
out:
    free(buf);
    return r;
}

/* --- import ---------------------------------------------------------------------- */

int vm_image_import(const char *images_dir, const char *arch, const char *src, char **out,
                    bool *imported, struct err *e)
{
    *out = NULL;
    *imported = false;
    struct qimg *q = NULL;
    int r = qimg_open_flags(&q, src, NULL, QIMG_RO | QIMG_NO_BACKING, e);
    if (r < 0)
        return r;
    if (!q->raw && q->backing_name) {
        r = err_set(e, -EINVAL, "%s: a qcow2 image with a backing file (%s) cannot be a base; "
                    "flatten it first (petrel img convert -O qcow2 %s FLAT.qcow2)", src,
                    q->backing_name, src);
        qimg_close(q);
        return r;
    }
    const char *ext = q->raw ? "raw" : "qcow2";
    char tmp[PATH_MAX + 32] = "", name[96], path[PATH_MAX + 96];
    int fd = -1;
    struct stat before, after;
    struct src_id id, id_after;
    if (fstat(q->fd, &before) < 0) {
        r = err_set(e, -errno, "%s: %s", src, strerror(errno));
        goto out;
    }
    src_id_of(&before, &id);
    if ((r = vm_mkdir_p(images_dir, 0700, e)) < 0)
        goto out;
    if ((*out = record_lookup(images_dir, arch, src, &id)))
        goto out;
    snprintf(tmp, sizeof(tmp), "%s/.import.XXXXXX", images_dir);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        r = err_set(e, -errno, "%s: %s", tmp, strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    struct sha256 h;
    uint8_t digest[SHA256_DIGEST_LEN];
    sha256_init(&h);
    if ((r = copy_hash(q->fd, fd, (uint64_t)before.st_size, &h, src, tmp, e)) < 0)
        goto out;
    sha256_final(&h, digest);
    if (fstat(q->fd, &after) < 0) {
        r = err_set(e, -errno, "%s: %s", src, strerror(errno));
        goto out;
    }
    src_id_of(&after, &id_after);
    if (!src_id_eq(&id, &id_after)) {
        r = err_set(e, -EAGAIN, "%s: changed while it was imported; try again", src);
        goto out;
    }
    if (fchmod(fd, 0444) < 0 || fsync(fd) < 0) {
        r = err_set(e, -errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    int len = snprintf(name, sizeof(name), "%s-", arch);
    for (unsigned i = 0; i < VM_IMAGE_HASH_HEX / 2; i++)
        len += snprintf(name + len, sizeof(name) - (size_t)len, "%02x", digest[i]);
    snprintf(name + len, sizeof(name) - (size_t)len, ".%s", ext);
    snprintf(path, sizeof(path), "%s/%s", images_dir, name);
    /* link, not rename: an image already there (the same content) stays */
    if (link(tmp, path) == 0)
        *imported = true;
    else if (errno != EEXIST) {
        r = err_set(e, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    int dfd = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    if (!(*out = strdup(path))) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto out;
    }
    record_save(images_dir, arch, src, &id, name);
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    qimg_close(q);
    if (r < 0) {
        free(*out);
        *out = NULL;
        *imported = false;
    }
    return r;
}
