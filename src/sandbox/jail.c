/* The jailer, part 1: checking what goes into the jail (root, DIR, uid and
 * gid, netns, every file and its permissions for the jail's uid) before
 * anything is started.  Entering it: jail_enter.c.  Model: jail.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "sandbox/jail_priv.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

/* "123" -> 123; -1 if s is not all digits (a name) or out of range. */
static long long parse_id(const char *s)
{
    if (!*s || strlen(s) > 10)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    long long v = atoll(s);
    return v > 0xfffffffell ? -2 : v;
}

static int resolve_ids(struct jail *j, const struct jail_config *c, struct err *e)
{
    bool have_gid = false;
    j->uid = 0;
    j->gid = 0;
    if (c->uid) {
        long long n = parse_id(c->uid);
        if (n == -2)
            return err_set(e, -EINVAL, "--uid %s: out of range", c->uid);
        struct passwd *pw = n >= 0 ? getpwuid((uid_t)n) : getpwnam(c->uid);
        if (n < 0 && !pw)
            return err_set(e, -ENOENT, "--uid %s: no such user", c->uid);
        j->uid = n >= 0 ? (uid_t)n : pw->pw_uid;
        if (pw) {
            j->gid = pw->pw_gid;
            have_gid = true;
        }
    }
    if (c->gid) {
        long long n = parse_id(c->gid);
        if (n == -2)
            return err_set(e, -EINVAL, "--gid %s: out of range", c->gid);
        if (n < 0) {
            struct group *gr = getgrnam(c->gid);
            if (!gr)
                return err_set(e, -ENOENT, "--gid %s: no such group", c->gid);
            n = gr->gr_gid;
        }
        j->gid = (gid_t)n;
        have_gid = true;
    }
    if (c->uid && !have_gid)
        return err_set(e, -EINVAL, "--uid %s is no user of this host: give --gid too", c->uid);
    j->drop_uid = c->uid != NULL;
    return 0;
}

/* Can the jail's uid/gid (no supplementary groups, no capabilities) do
 * want (4 r, 2 w, 1 x) to st, by its mode bits? */
bool jail_may(const struct jail *j, const struct stat *st, unsigned want)
{
    unsigned m;
    if (st->st_uid == j->uid)
        m = (st->st_mode >> 6) & 7;
    else if (st->st_gid == j->gid)
        m = (st->st_mode >> 3) & 7;
    else
        m = st->st_mode & 7;
    return (m & want) == want;
}

static const char *ftype(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISLNK(m) ? "a symbolic link" : S_ISCHR(m) ?
           "a character device" : S_ISBLK(m) ? "a block device" : "a special file";
}

static int check_dir(struct jail *j, const char *dir, struct err *e)
{
    struct stat st;
    size_t n = strlen(dir);
    char given[PATH_MAX];
    if (!n || n >= sizeof(given))
        return err_set(e, -EINVAL, "--jail: give a directory");
    memcpy(given, dir, n + 1);
    while (n > 1 && given[n - 1] == '/')
        given[--n] = 0;
    if (lstat(given, &st) < 0)
        return err_set(e, -errno, "--jail %s: %s", dir, strerror(errno));
    if (S_ISLNK(st.st_mode))
        return err_set(e, -ELOOP, "--jail %s is a symbolic link: give the directory itself", dir);
    if (!S_ISDIR(st.st_mode))
        return err_set(e, -ENOTDIR, "--jail %s is not a directory", dir);
    if (!realpath(given, j->dir))
        return err_set(e, -errno, "--jail %s: %s", dir, strerror(errno));
    if (!strcmp(j->dir, "/"))
        return err_set(e, -EINVAL, "--jail /: give a directory of its own for this VM");
    if (st.st_uid != 0 && !(j->drop_uid && st.st_uid == j->uid))
        return err_set(e, -EPERM, "--jail %s: owned by uid %u, neither root nor the jail's "
                       "uid", dir, (unsigned)st.st_uid);
    if (st.st_mode & 022)
        return err_set(e, -EPERM, "--jail %s: writable by group or others (chmod go-w it)", dir);
    if ((st.st_mode & 0300) != 0300)
        return err_set(e, -EPERM, "--jail %s: its owner cannot write it (chmod u+wx it)", dir);
    DIR *d = opendir(given);
    if (!d)
        return err_set(e, -errno, "--jail %s: %s", dir, strerror(errno));
    int ret = 0;
    struct dirent *de;
    while (!ret && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            ret = err_set(e, -errno, "--jail %s: %s: %s", dir, de->d_name, strerror(errno));
        else if (!S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode) && !S_ISFIFO(st.st_mode))
            ret = err_set(e, -EEXIST, "--jail %s holds %s, %s: give an empty directory (only "
                          "files, sockets and fifos an earlier run left may be in it)", dir,
                          de->d_name, ftype(st.st_mode));
    }
    closedir(d);
    return ret;
}

static int open_netns(struct jail *j, const char *path, struct err *e)
{
    struct statfs sfs;
    j->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (j->netns_fd < 0)
        return err_set(e, -errno, "--netns %s: %s", path, strerror(errno));
    if (fstatfs(j->netns_fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC ||
        ioctl(j->netns_fd, NS_GET_NSTYPE) != CLONE_NEWNET)
        return err_set(e, -EINVAL, "--netns %s: not a network namespace (e.g. "
                       "/var/run/netns/NAME from 'ip netns add NAME')", path);
    return 0;
}

struct jail *jail_new(const struct jail_config *c, struct err *e)
{
    if (geteuid() != 0) {
        err_set(e, -EPERM, "--jail needs root (it makes namespaces and mounts): run petrel "
                "as root, with --uid and --gid to run the VMM as");
        return NULL;
    }
    struct jail *j = calloc(1, sizeof(*j));
    if (!j) {
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    j->netns_fd = -1;
    j->dir_fd = -1;
    j->fsize = c->fsize;
    j->nofile = c->nofile ? c->nofile : JAIL_NOFILE;
    if (resolve_ids(j, c, e) < 0 || check_dir(j, c->dir, e) < 0 ||
        (c->netns && open_netns(j, c->netns, e) < 0)) {
        jail_free(j);
        return NULL;
    }
    j->dir_len = strlen(j->dir);
    if (jail_add_device(j, "/dev/null", e) < 0 || jail_add_device(j, "/dev/urandom", e) < 0) {
        jail_free(j);
        return NULL;
    }
    return j;
}

void jail_free(struct jail *j)
{
    if (!j)
        return;
    for (unsigned i = 0; i < j->nmounts; i++) {
        free(j->mounts[i].target);
        free(j->mounts[i].source);
        if (j->mounts[i].fd >= 0)
            close(j->mounts[i].fd);
    }
    for (unsigned i = 0; i < j->nstrings; i++)
        free(j->strings[i]);
    if (j->netns_fd >= 0)
        close(j->netns_fd);
    if (j->dir_fd >= 0)
        close(j->dir_fd);
    free(j);
}

/* Keep s (allocated) for the life of the jail; returns it (NULL: no room). */
static const char *keep(struct jail *j, char *s)
{
    if (!s || j->nstrings >= JAIL_MAX_MOUNTS) {
        free(s);
        return NULL;
    }
    return j->strings[j->nstrings++] = s;
}

/* Lexically normalize an absolute path: no "//", "." or "..". */
static void normalize(char *p)
{
    char *out = p, *in = p;
    while (*in) {
        while (*in == '/')
            in++;
        if (!*in)
            break;
        char *end = strchrnul(in, '/');
        size_t n = (size_t)(end - in);
        if (n == 1 && in[0] == '.') {
            /* skip */
        } else if (n == 2 && in[0] == '.' && in[1] == '.') {
            while (out > p && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, in, n);
            out += n;
        }
        in = end;
    }
    if (out == p)
        *out++ = '/';
    *out = 0;
}

bool jail_in_dir(const struct jail *j, const char *path)
{
    return !strncmp(path, j->dir, j->dir_len) && path[j->dir_len] == '/';
}

/* Record target <- source (host path, already resolved) as a bind mount. */
static int add_mount(struct jail *j, const char *target, const char *source, enum jail_kind kind,
                     bool rw, struct err *e)
{
    for (unsigned i = 0; i < j->nmounts; i++) {
        struct jail_mount *m = &j->mounts[i];
        if (strcmp(m->target, target))
            continue;
        if (strcmp(m->source, source))
            return err_set(e, -EEXIST, "%s would be two files in the jail (%s and %s)",
                           target, m->source, source);
        m->rw |= rw;
        return 0;
    }
    if (j->nmounts >= JAIL_MAX_MOUNTS)
        return err_set(e, -E2BIG, "too many files for the jail (at most %d)", JAIL_MAX_MOUNTS);
    struct jail_mount *m = &j->mounts[j->nmounts];
    *m = (struct jail_mount){ .target = strdup(target), .source = strdup(source), .kind = kind,
                              .rw = rw, .fd = -1 };
    if (!m->target || !m->source) {
        free(m->target);
        free(m->source);
        return err_set(e, -ENOMEM, "out of memory");
    }
    j->nmounts++;
    return 0;
}

/* target: where the VMM will open it (absolute, normalized); host: the host
 * path to resolve.  Checks the type and the jail uid's access. */
static int add_input(struct jail *j, const char *target, const char *host, bool rw,
                     bool dir, bool blockdev_ok, const char *what, struct err *e)
{
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(host, real) || stat(real, &st) < 0)
        return err_set(e, -errno, "%s %s: %s", what, host, strerror(errno));
    if (dir ? !S_ISDIR(st.st_mode) : !(S_ISREG(st.st_mode) || (blockdev_ok && S_ISBLK(st.st_mode))))
        return err_set(e, -EINVAL, "%s %s: %s, not a %s", what, host, ftype(st.st_mode),
                       dir ? "directory" : "regular file");
    unsigned want = 4 | (rw ? 2 : 0) | (dir ? 1 : 0);
    if (!jail_may(j, &st, want))
        return err_set(e, -EACCES, "%s %s: not %s by uid %u gid %u, the jail's (chown or "
                       "chmod it%s)", what, host, rw ? "readable and writable" : "readable",
                       (unsigned)j->uid, (unsigned)j->gid, rw ? ", or readonly=on" : "");
    if (jail_in_dir(j, target) && jail_in_dir(j, real))
        return 0;       /* in DIR: visible as it is */
    if (!strcmp(target, j->dir) || jail_in_dir(j, target))
        return err_set(e, -EINVAL, "%s %s: its path in the jail, %s, lies in the jail "
                       "directory but the file does not", what, host, target);
    return add_mount(j, target, real, dir ? JAIL_DIR : S_ISBLK(st.st_mode) ? JAIL_DEV : JAIL_FILE,
                     rw, e);
}

/* jail_add_file and jail_add_dir: bind *path's canonical path at itself
 * and hand that path back. */
static int add_canonical(struct jail *j, const char **path, bool rw, bool dir, const char *what,
                         struct err *e)
{
    char real[PATH_MAX];
    if (!realpath(*path, real))
        return err_set(e, -errno, "%s %s: %s", what, *path, strerror(errno));
    int r = add_input(j, real, real, rw, dir, false, what, e);
    if (r < 0)
        return r;
    const char *s = keep(j, strdup(real));
    if (!s)
        return err_set(e, -ENOMEM, "out of memory");
    *path = s;
    return 0;
}

int jail_add_file(struct jail *j, const char **path, bool rw, const char *what, struct err *e)
{
    return add_canonical(j, path, rw, false, what, e);
}

int jail_add_dir(struct jail *j, const char **path, const char *what, struct err *e)
{
    return add_canonical(j, path, false, true, what, e);
}

#define MAX_CHAIN 32

int jail_add_disk(struct jail *j, struct disk_config *d, struct err *e)
{
    char real[PATH_MAX];
    if (!realpath(d->path, real))
        return err_set(e, -errno, "--disk %s: %s", d->path, strerror(errno));
    int r = add_input(j, real, real, !d->readonly, false, true, "--disk", e);
    if (r < 0)
        return r;
    const char *s = keep(j, strdup(real));
    if (!s)
        return err_set(e, -ENOMEM, "out of memory");
    const char *given = d->path;
    d->path = s;
    /* The backing chain: each file at the path the VMM will open, i.e. its
     * name relative to the directory of the image that names it (target),
     * bound from what that path is on the host (host). */
    char target[PATH_MAX], host[PATH_MAX];
    snprintf(target, sizeof(target), "%s", real);
    snprintf(host, sizeof(host), "%s", real);
    char fmt[32] = "";
    if (d->format)
        snprintf(fmt, sizeof(fmt), "%s", d->format);
    for (int depth = 0; depth < MAX_CHAIN; depth++) {
        struct qimg *q;
        struct err qe = { "" };
        if (qimg_open_flags(&q, host, fmt[0] ? fmt : NULL, QIMG_RO | QIMG_NO_BACKING, &qe) < 0)
            return err_set(e, -EINVAL, "--disk %s: %s", given, qe.msg);
        if (q->raw || !q->backing_name) {
            qimg_close(q);
            return 0;
        }
        char next[PATH_MAX * 2];
        if (q->backing_name[0] == '/') {
            snprintf(next, sizeof(next), "%s", q->backing_name);
        } else {
            char *slash = strrchr(target, '/');
            snprintf(next, sizeof(next), "%.*s/%s", (int)(slash - target), target,
                     q->backing_name);
        }
        snprintf(fmt, sizeof(fmt), "%s", q->backing_fmt);
        qimg_close(q);
        if (strlen(next) >= PATH_MAX)
            return err_set(e, -ENAMETOOLONG, "--disk %s: a backing file's path is too long",
                           given);
        char lexical[PATH_MAX];
        memcpy(lexical, next, strlen(next) + 1);
        normalize(lexical);
        if ((r = add_input(j, lexical, next, false, false, true, "--disk backing file", e)) < 0)
            return r;
        if (!realpath(next, host))
            return err_set(e, -errno, "--disk backing file %s: %s", next, strerror(errno));
        memcpy(target, lexical, strlen(lexical) + 1);
    }
    return err_set(e, -ELOOP, "--disk %s: backing chain deeper than %d", given, MAX_CHAIN);
}

int jail_add_output(struct jail *j, const char **path, const char *what, struct err *e)
{
    char abs[PATH_MAX * 2], dir[PATH_MAX], real[PATH_MAX];
    const char *p = *path;
    if (!*p)
        return err_set(e, -EINVAL, "%s: empty path", what);
    if (p[0] == '/') {
        snprintf(abs, sizeof(abs), "%s", p);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return err_set(e, -errno, "%s %s: %s", what, p, strerror(errno));
        snprintf(abs, sizeof(abs), "%s/%s", cwd, p);
    }
    if (strlen(abs) >= PATH_MAX)
        return err_set(e, -ENAMETOOLONG, "%s %s: path too long", what, p);
    char *slash = strrchr(abs, '/');
    const char *base = slash + 1;
    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        return err_set(e, -EINVAL, "%s %s: not a file name", what, p);
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - abs) ? (int)(slash - abs) : 1, abs);
    if (!realpath(dir, real) || strcmp(real, j->dir))
        return err_set(e, -EINVAL, "%s %s: outside the jail: with --jail %s, sockets and logs "
                       "go in that directory", what, p, j->dir);
    struct stat st;
    if (fstatat(AT_FDCWD, abs, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return err_set(e, -ELOOP, "%s %s: a symbolic link", what, p);
    char *s;
    if (asprintf(&s, "%s/%s", j->dir, base) < 0)
        return err_set(e, -ENOMEM, "out of memory");
    if (!(*path = keep(j, s)))
        return err_set(e, -ENOMEM, "out of memory");
    return 0;
}

int jail_add_device(struct jail *j, const char *path, struct err *e)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return err_set(e, -errno, "%s: %s (needed in the jail)", path, strerror(errno));
    if (!S_ISCHR(st.st_mode))
        return err_set(e, -EINVAL, "%s: not a character device", path);
    if (!jail_may(j, &st, 6))
        return err_set(e, -EACCES, "%s: not readable and writable by uid %u gid %u, the "
                       "jail's (use --gid of the device's group)", path, (unsigned)j->uid,
                       (unsigned)j->gid);
    return add_mount(j, path, path, JAIL_DEV, true, e);
}
