/* A VM's definition (vm.json): validation on load, atomic save; the state
 * directory.  See vm_def.h. */
#include "cli/vm_def.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/virtio_pci.h"

bool vm_name_valid(const char *name)
{
    if (!name || !isalnum((unsigned char)name[0]) || !isascii((unsigned char)name[0]))
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        unsigned char ch = (unsigned char)*p;
        if (n >= VM_NAME_MAX)
            return false;
        if (!(isascii(ch) && (isalnum(ch) || ch == '_' || ch == '.' || ch == '-')))
            return false;
    }
    return true;
}

unsigned vm_def_max_cpus(const char *arch)
{
    if (arch && !strcmp(arch, "riscv64"))
        return VM_DEF_MAX_CPUS_RISCV64;
    if (arch && !strcmp(arch, "x86_64"))
        return VM_DEF_MAX_CPUS_X86_64;
    return 0;
}

int vm_def_set_str(char **field, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = strdup(s)))
        return -ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

void vm_def_free(struct vm_def *d)
{
    free(d->name);
    free(d->arch);
    free(d->kernel);
    free(d->initrd);
    free(d->firmware);
    free(d->append);
    for (unsigned i = 0; i < d->ndisks; i++) {
        free(d->disks[i].path);
        free(d->disks[i].format);
        free(d->disks[i].serial);
    }
    for (unsigned i = 0; i < d->ndevices; i++)
        free(d->devices[i]);
    free(d->authorized_keys);
    free(d->ssh_key_file);
    free(d->created_utc);
    free(d->restore_from);
    free(d->cloned_from_vm);
    free(d->cloned_from_snapshot);
    memset(d, 0, sizeof(*d));
}

/* --- validation ------------------------------------------------------------ */

struct vctx {
    const char *file;
    struct err *e;
};

static int bad(struct vctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct vctx *c, const char *field, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return err_set(c->e, -EINVAL, "%s: field '%s': %s", c->file, field, what);
}

/* Reject members of obj not in `known` (NULL-terminated). */
static int check_known(struct vctx *c, json_t *obj, const char *prefix, const char *const *known)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        bool ok = false;
        for (unsigned i = 0; known[i]; i++)
            ok |= !strcmp(key, known[i]);
        if (!ok) {
            char field[200];
            snprintf(field, sizeof(field), "%s%.100s", prefix, key);
            return bad(c, field, "unknown field");
        }
    }
    return 0;
}

enum { OPTIONAL = 0, REQUIRED = 1 };
enum { NOT_NULL = 0, NULLABLE = 1 };

/* A string member: absent -> *out NULL (or "missing" when required); null ->
 * NULL when nullable.  The string must hold no NUL, be non-empty unless
 * allow_empty, and be at most maxlen bytes. */
static int get_str(struct vctx *c, json_t *obj, const char *key, const char *field,
                   int required, int nullable, bool allow_empty, size_t maxlen, char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return bad(c, field, "missing");
        return 0;
    }
    if (json_is_null(v)) {
        if (nullable)
            return 0;
        return bad(c, field, "expected a string, not null");
    }
    if (!json_is_string(v))
        return bad(c, field, nullable ? "expected a string or null" : "expected a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
        return bad(c, field, "the string holds a NUL character");
    if (!n && !allow_empty)
        return bad(c, field, "expected a non-empty string");
    if (n > maxlen)
        return bad(c, field, "expected a string of at most %zu bytes", maxlen);
    if (!(*out = strdup(s)))
        return err_set(c->e, -ENOMEM, "out of memory");
    return 0;
}

static int get_uint(struct vctx *c, json_t *obj, const char *key, const char *field,
                    int required, unsigned dflt, unsigned min, unsigned max, unsigned *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return bad(c, field, "missing (expected an integer %u..%u)", min, max);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > (json_int_t)max)
        return bad(c, field, "expected an integer %u..%u", min, max);
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int get_bool(struct vctx *c, json_t *obj, const char *key, const char *field, bool dflt,
                    bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return bad(c, field, "expected true or false");
    *out = json_is_true(v);
    return 0;
}

/* A path: no newline (it ends up on a command line and in messages). */
static int check_path(struct vctx *c, const char *field, const char *s)
{
    if (s && strpbrk(s, "\n\r"))
        return bad(c, field, "a path may not hold a line break");
    return 0;
}

static int parse_disk(struct vctx *c, json_t *v, unsigned i, struct vm_disk_def *d)
{
    static const char *const known[] = { "path", "format", "readonly", "serial", NULL };
    char field[64], prefix[32];
    snprintf(prefix, sizeof(prefix), "disks[%u].", i);
    if (!json_is_object(v)) {
        snprintf(field, sizeof(field), "disks[%u]", i);
        return bad(c, field, "expected an object {\"path\", \"format\", \"readonly\", "
                   "\"serial\"}");
    }
    int r = check_known(c, v, prefix, known);
    if (r < 0)
        return r;
    snprintf(field, sizeof(field), "disks[%u].path", i);
    if ((r = get_str(c, v, "path", field, REQUIRED, NOT_NULL, false, VM_DEF_MAX_PATH,
                     &d->path)) < 0 ||
        (r = check_path(c, field, d->path)) < 0)
        return r;
    snprintf(field, sizeof(field), "disks[%u].format", i);
    if ((r = get_str(c, v, "format", field, OPTIONAL, NULLABLE, false, 16, &d->format)) < 0)
        return r;
    if (d->format && strcmp(d->format, "raw") && strcmp(d->format, "qcow2"))
        return bad(c, field, "expected \"raw\", \"qcow2\" or null (probe)");
    snprintf(field, sizeof(field), "disks[%u].readonly", i);
    if ((r = get_bool(c, v, "readonly", field, false, &d->readonly)) < 0)
        return r;
    snprintf(field, sizeof(field), "disks[%u].serial", i);
    if ((r = get_str(c, v, "serial", field, OPTIONAL, NULLABLE, false, VM_DEF_MAX_SERIAL,
                     &d->serial)) < 0)
        return r;
    if (d->serial) {
        for (const char *p = d->serial; *p; p++)
            if (!isprint((unsigned char)*p) || !isascii((unsigned char)*p) || *p == ',')
                return bad(c, field, "expected printable ASCII without commas");
        if (!strcmp(d->serial, VM_DEF_CONFIG_SERIAL))
            return bad(c, field, "'" VM_DEF_CONFIG_SERIAL "' is reserved for the config disk");
    }
    return 0;
}

static int parse_ssh(struct vctx *c, json_t *v, struct vm_def *d)
{
    static const char *const known[] = { "port", "authorized_keys", "key_file", NULL };
    if (!v || json_is_null(v))
        return (d->authorized_keys = strdup("")) ? 0 : err_set(c->e, -ENOMEM, "out of memory");
    if (!json_is_object(v))
        return bad(c, "ssh", "expected an object {\"port\", \"authorized_keys\", \"key_file\"}");
    int r = check_known(c, v, "ssh.", known);
    if (r < 0 ||
        (r = get_uint(c, v, "port", "ssh.port", OPTIONAL, 0, 0, 65535, &d->ssh_port)) < 0 ||
        (r = get_str(c, v, "authorized_keys", "ssh.authorized_keys", OPTIONAL, NULLABLE, true,
                     VM_DEF_MAX_KEYS, &d->authorized_keys)) < 0 ||
        (r = get_str(c, v, "key_file", "ssh.key_file", OPTIONAL, NULLABLE, false,
                     VM_DEF_MAX_PATH, &d->ssh_key_file)) < 0 ||
        (r = check_path(c, "ssh.key_file", d->ssh_key_file)) < 0)
        return r;
    if (!d->authorized_keys && !(d->authorized_keys = strdup("")))
        return err_set(c->e, -ENOMEM, "out of memory");
    return 0;
}

/* A snapshot tag: [A-Za-z0-9._-]{1,64}, not starting with '.' or '-' (hidden
 * files, options). */
bool vm_tag_valid(const char *tag)
{
    size_t n = tag ? strlen(tag) : 0;
    if (!n || n > VM_DEF_MAX_TAG || tag[0] == '.' || tag[0] == '-')
        return false;
    for (const char *p = tag; *p; p++)
        if (!isascii((unsigned char)*p) || !(isalnum((unsigned char)*p) || strchr("._-", *p)))
            return false;
    return true;
}

/* "cloned_from": {"vm": NAME, "snapshot": TAG|null} or null */
static int parse_cloned_from(struct vctx *c, json_t *v, struct vm_def *d)
{
    static const char *const known[] = { "vm", "snapshot", NULL };
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return bad(c, "cloned_from", "expected an object {\"vm\", \"snapshot\"} or null");
    int r = check_known(c, v, "cloned_from.", known);
    if (r < 0 ||
        (r = get_str(c, v, "vm", "cloned_from.vm", REQUIRED, NOT_NULL, false, VM_NAME_MAX,
                     &d->cloned_from_vm)) < 0 ||
        (r = get_str(c, v, "snapshot", "cloned_from.snapshot", OPTIONAL, NULLABLE, false,
                     VM_DEF_MAX_TAG, &d->cloned_from_snapshot)) < 0)
        return r;
    if (!vm_name_valid(d->cloned_from_vm))
        return bad(c, "cloned_from.vm", "not a valid VM name");
    if (d->cloned_from_snapshot && !vm_tag_valid(d->cloned_from_snapshot))
        return bad(c, "cloned_from.snapshot", "not a valid snapshot tag");
    return 0;
}

/* "limits": {"cpu_quota_pct", "cpu_pin", "memory_max_mib", "pids_max",
 * "io_max": [petrel run --io-max specs]} or null */
static int parse_limits(struct vctx *c, json_t *v, struct cg_limits *l)
{
    static const char *const known[] = { "cpu_quota_pct", "cpu_pin", "memory_max_mib",
                                         "pids_max", "io_max", NULL };
    unsigned mib = 0;
    char *pin = NULL;
    struct err pe = { "" };
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return bad(c, "limits", "expected an object {\"cpu_quota_pct\", \"cpu_pin\", "
                   "\"memory_max_mib\", \"pids_max\", \"io_max\"} or null");
    int r = check_known(c, v, "limits.", known);
    if (r < 0 ||
        (r = get_uint(c, v, "cpu_quota_pct", "limits.cpu_quota_pct", OPTIONAL, 0, 1,
                      CG_MAX_QUOTA_PCT, &l->cpu_quota_pct)) < 0 ||
        (r = get_uint(c, v, "memory_max_mib", "limits.memory_max_mib", OPTIONAL, 0,
                      (unsigned)(CG_MIN_MEMORY >> 20), (unsigned)(CG_MAX_MEMORY >> 20),
                      &mib)) < 0 ||
        (r = get_uint(c, v, "pids_max", "limits.pids_max", OPTIONAL, 0, 1, CG_MAX_PIDS,
                      &l->pids_max)) < 0 ||
        (r = get_str(c, v, "cpu_pin", "limits.cpu_pin", OPTIONAL, NULLABLE, false, 4096,
                     &pin)) < 0)
        return r;
    l->memory_max = (uint64_t)mib << 20;
    if (pin) {
        r = cg_parse_cpus("CPU list", pin, &l->pin, &pe);
        free(pin);
        if (r < 0)
            return bad(c, "limits.cpu_pin", "%s", pe.msg);
    }
    json_t *io = json_object_get(v, "io_max");
    if (!io || json_is_null(io))
        return 0;
    if (!json_is_array(io) || json_array_size(io) > CG_MAX_IO)
        return bad(c, "limits.io_max", "expected an array of at most %d --io-max specs "
                   "(strings)", CG_MAX_IO);
    for (size_t i = 0; i < json_array_size(io); i++) {
        char field[48];
        snprintf(field, sizeof(field), "limits.io_max[%zu]", i);
        json_t *s = json_array_get(io, i);
        if (!json_is_string(s) || json_string_length(s) > 256 ||
            strlen(json_string_value(s)) != json_string_length(s))
            return bad(c, field, "expected an --io-max spec (e.g. \"rbps=10M,wiops=100\")");
        if (cg_parse_io("spec", json_string_value(s), &l->io[l->nio], &pe) < 0)
            return bad(c, field, "%s", pe.msg);
        l->nio++;
    }
    return 0;
}

static int from_json(struct vctx *c, json_t *root, const char *expect_name, struct vm_def *d)
{
    static const char *const known[] = {
        "format", "version", "name", "arch", "vcpus", "memory_mib", "kernel", "initrd",
        "firmware", "append", "disks", "devices", "ssh", "autostart", "display", "created_utc",
        "restore_from", "cloned_from", "limits", NULL,
    };
    int r;
    char *s = NULL;
    if (!json_is_object(root))
        return err_set(c->e, -EINVAL, "%s: expected a JSON object (a petrel-vm definition)",
                       c->file);
    json_t *v = json_object_get(root, "format");
    if (!v)
        return bad(c, "format", "missing (expected \"" VM_DEF_FORMAT "\")");
    if (!json_is_string(v) || strcmp(json_string_value(v), VM_DEF_FORMAT))
        return bad(c, "format", "expected \"" VM_DEF_FORMAT "\"");
    v = json_object_get(root, "version");
    if (!v)
        return bad(c, "version", "missing (expected %d)", VM_DEF_VERSION);
    if (!json_is_integer(v))
        return bad(c, "version", "expected an integer (%d)", VM_DEF_VERSION);
    if (json_integer_value(v) != VM_DEF_VERSION)
        return bad(c, "version", "version %lld is not supported (this petrel reads version %d)",
                   (long long)json_integer_value(v), VM_DEF_VERSION);
    if ((r = check_known(c, root, "", known)) < 0)
        return r;

    if ((r = get_str(c, root, "name", "name", REQUIRED, NOT_NULL, false, 256, &d->name)) < 0)
        return r;
    if (!vm_name_valid(d->name))
        return bad(c, "name", "'%s' is not a valid name (1 to %d characters from a-z A-Z 0-9 "
                   "_ . -, starting with a letter or digit)", d->name, VM_NAME_MAX);
    if (expect_name && strcmp(d->name, expect_name))
        return bad(c, "name", "'%s' does not match the VM's directory name '%s'", d->name,
                   expect_name);
    if ((r = get_str(c, root, "arch", "arch", REQUIRED, NOT_NULL, false, 16, &d->arch)) < 0)
        return r;
    unsigned max_cpus = vm_def_max_cpus(d->arch);
    if (!max_cpus)
        return bad(c, "arch", "expected \"riscv64\" or \"x86_64\"");
    if ((r = get_uint(c, root, "vcpus", "vcpus", REQUIRED, 1, 1, max_cpus, &d->vcpus)) < 0 ||
        (r = get_uint(c, root, "memory_mib", "memory_mib", REQUIRED, 0, VM_DEF_MIN_MEMORY_MIB,
                      VM_DEF_MAX_MEMORY_MIB, &d->memory_mib)) < 0)
        return r;
    if ((r = get_str(c, root, "kernel", "kernel", OPTIONAL, NULLABLE, false, VM_DEF_MAX_PATH,
                     &d->kernel)) < 0 ||
        (r = check_path(c, "kernel", d->kernel)) < 0 ||
        (r = get_str(c, root, "initrd", "initrd", OPTIONAL, NULLABLE, false, VM_DEF_MAX_PATH,
                     &d->initrd)) < 0 ||
        (r = check_path(c, "initrd", d->initrd)) < 0 ||
        (r = get_str(c, root, "firmware", "firmware", OPTIONAL, NULLABLE, false,
                     VM_DEF_MAX_PATH, &d->firmware)) < 0 ||
        (r = check_path(c, "firmware", d->firmware)) < 0 ||
        (r = get_str(c, root, "append", "append", OPTIONAL, NULLABLE, true, VM_DEF_MAX_APPEND,
                     &d->append)) < 0)
        return r;
    if (d->append && strpbrk(d->append, "\n\r"))
        return bad(c, "append", "the command line may not hold a line break");

    v = json_object_get(root, "disks");
    if (v && !json_is_null(v)) {
        if (!json_is_array(v))
            return bad(c, "disks", "expected an array of disks");
        if (json_array_size(v) > VM_DEF_MAX_DISKS)
            return bad(c, "disks", "at most %d disks (one more slot is the config disk)",
                       VM_DEF_MAX_DISKS);
        for (size_t i = 0; i < json_array_size(v); i++) {
            d->ndisks = (unsigned)i + 1;
            if ((r = parse_disk(c, json_array_get(v, i), (unsigned)i, &d->disks[i])) < 0)
                return r;
        }
    }
    v = json_object_get(root, "devices");
    if (v && !json_is_null(v)) {
        if (!json_is_array(v))
            return bad(c, "devices", "expected an array of device specs (strings)");
        if (json_array_size(v) > VM_DEF_MAX_DEVICES)
            return bad(c, "devices", "at most %d devices", VM_DEF_MAX_DEVICES);
        for (size_t i = 0; i < json_array_size(v); i++) {
            char field[32];
            snprintf(field, sizeof(field), "devices[%zu]", i);
            json_t *dv = json_array_get(v, i);
            if (!json_is_string(dv))
                return bad(c, field, "expected a device spec string (e.g. \"virtio-rng\")");
            json_t *tmp = json_object();
            if (!tmp)
                return err_set(c->e, -ENOMEM, "out of memory");
            json_object_set(tmp, "d", dv);
            r = get_str(c, tmp, "d", field, REQUIRED, NOT_NULL, false, VM_DEF_MAX_DEVICE_SPEC,
                        &s);
            json_decref(tmp);
            if (r < 0)
                return r;
            d->devices[d->ndevices++] = s;
            if (strpbrk(s, "\n\r"))
                return bad(c, field, "a device spec may not hold a line break");
            if (!virtio_device_known(s))
                return bad(c, field, "unknown device '%.*s' (known: " VIRTIO_DEVICE_NAMES ")",
                           (int)strcspn(s, ","), s);
        }
    }
    if ((r = parse_ssh(c, json_object_get(root, "ssh"), d)) < 0 ||
        (r = get_bool(c, root, "autostart", "autostart", false, &d->autostart)) < 0 ||
        (r = get_bool(c, root, "display", "display", false, &d->display)) < 0 ||
        (r = get_str(c, root, "created_utc", "created_utc", OPTIONAL, NULLABLE, false, 64,
                     &d->created_utc)) < 0 ||
        (r = get_str(c, root, "restore_from", "restore_from", OPTIONAL, NULLABLE, false,
                     VM_DEF_MAX_PATH, &d->restore_from)) < 0 ||
        (r = check_path(c, "restore_from", d->restore_from)) < 0 ||
        (r = parse_cloned_from(c, json_object_get(root, "cloned_from"), d)) < 0 ||
        (r = parse_limits(c, json_object_get(root, "limits"), &d->limits)) < 0)
        return r;
    return 0;
}

int vm_def_from_json(struct vm_def *d, json_t *root, const char *file, const char *expect_name,
                     struct err *e)
{
    struct vctx c = { file, e };
    memset(d, 0, sizeof(*d));
    int r = from_json(&c, root, expect_name, d);
    if (r < 0)
        vm_def_free(d);
    return r;
}

int vm_def_load(struct vm_def *d, const char *file, const char *expect_name, struct err *e)
{
    memset(d, 0, sizeof(*d));
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return err_set(e, -errno, "%s: %s", file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, -EINVAL, "%s: not a regular file", file);
    }
    if (st.st_size > VM_DEF_MAX_FILE) {
        close(fd);
        return err_set(e, -EFBIG, "%s: %lld bytes is too large for a definition (at most %u)",
                       file, (long long)st.st_size, VM_DEF_MAX_FILE);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return err_set(e, -ENOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return err_set(e, -err, "%s: read: %s", file, strerror(err));
        }
        got += (size_t)n;
    }
    close(fd);
    json_error_t je;
    json_t *root = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!root)
        return err_set(e, -EINVAL, "%s: invalid JSON at line %d column %d: %s", file, je.line,
                       je.column, je.text);
    int r = vm_def_from_json(d, root, file, expect_name, e);
    json_decref(root);
    return r;
}

/* --- saving ----------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *vm_def_limits_json(const struct cg_limits *l)
{
    json_t *o = json_object(), *io = json_array();
    char buf[1024];
    int bad_ = !o || !io;
    if (bad_)
        goto fail;
    if (l->cpu_quota_pct)
        bad_ |= json_object_set_new(o, "cpu_quota_pct", json_integer(l->cpu_quota_pct));
    if (l->pin.n) {
        cg_fmt_cpus(&l->pin, buf, sizeof(buf));
        bad_ |= json_object_set_new(o, "cpu_pin", json_string(buf));
    }
    if (l->memory_max)
        bad_ |= json_object_set_new(o, "memory_max_mib", json_integer((json_int_t)(l->memory_max >> 20)));
    if (l->pids_max)
        bad_ |= json_object_set_new(o, "pids_max", json_integer(l->pids_max));
    for (unsigned i = 0; i < l->nio; i++) {
        cg_fmt_io(&l->io[i], buf, sizeof(buf));
        bad_ |= json_array_append_new(io, json_string(buf));
    }
    if (l->nio) {
        bad_ |= json_object_set_new(o, "io_max", io);
        io = NULL;
    }
    if (!bad_) {
        json_decref(io);
        return o;
    }
fail:
    json_decref(io);
    json_decref(o);
    return NULL;
}

json_t *vm_def_to_json(const struct vm_def *d)
{
    json_t *root = json_object(), *disks = json_array(), *devs = json_array(),
           *ssh = json_object();
    if (!root || !disks || !devs || !ssh)
        goto fail;
    int bad_ = 0;
    bad_ |= json_object_set_new(root, "format", json_string(VM_DEF_FORMAT));
    bad_ |= json_object_set_new(root, "version", json_integer(VM_DEF_VERSION));
    bad_ |= json_object_set_new(root, "name", str_or_null(d->name));
    bad_ |= json_object_set_new(root, "arch", str_or_null(d->arch));
    bad_ |= json_object_set_new(root, "vcpus", json_integer(d->vcpus));
    bad_ |= json_object_set_new(root, "memory_mib", json_integer(d->memory_mib));
    bad_ |= json_object_set_new(root, "kernel", str_or_null(d->kernel));
    bad_ |= json_object_set_new(root, "initrd", str_or_null(d->initrd));
    bad_ |= json_object_set_new(root, "firmware", str_or_null(d->firmware));
    bad_ |= json_object_set_new(root, "append", str_or_null(d->append));
    for (unsigned i = 0; i < d->ndisks; i++) {
        json_t *o = json_object();
        if (!o)
            goto fail;
        bad_ |= json_object_set_new(o, "path", str_or_null(d->disks[i].path));
        bad_ |= json_object_set_new(o, "format", str_or_null(d->disks[i].format));
        bad_ |= json_object_set_new(o, "readonly", json_boolean(d->disks[i].readonly));
        bad_ |= json_object_set_new(o, "serial", str_or_null(d->disks[i].serial));
        bad_ |= json_array_append_new(disks, o);
    }
    for (unsigned i = 0; i < d->ndevices; i++)
        bad_ |= json_array_append_new(devs, str_or_null(d->devices[i]));
    bad_ |= json_object_set_new(root, "disks", disks);
    disks = NULL;
    bad_ |= json_object_set_new(root, "devices", devs);
    devs = NULL;
    bad_ |= json_object_set_new(ssh, "port", json_integer(d->ssh_port));
    bad_ |= json_object_set_new(ssh, "authorized_keys",
                                json_string(d->authorized_keys ? d->authorized_keys : ""));
    bad_ |= json_object_set_new(ssh, "key_file", str_or_null(d->ssh_key_file));
    bad_ |= json_object_set_new(root, "ssh", ssh);
    ssh = NULL;
    bad_ |= json_object_set_new(root, "autostart", json_boolean(d->autostart));
    if (d->display)
        bad_ |= json_object_set_new(root, "display", json_true());
    bad_ |= json_object_set_new(root, "created_utc", str_or_null(d->created_utc));
    if (d->restore_from)
        bad_ |= json_object_set_new(root, "restore_from", json_string(d->restore_from));
    if (d->cloned_from_vm)
        bad_ |= json_object_set_new(root, "cloned_from",
                                    json_pack("{s:s, s:o}", "vm", d->cloned_from_vm, "snapshot",
                                              str_or_null(d->cloned_from_snapshot)));
    if (cg_limits_any(&d->limits))
        bad_ |= json_object_set_new(root, "limits", vm_def_limits_json(&d->limits));
    if (bad_)
        goto fail;
    return root;
fail:
    json_decref(ssh);
    json_decref(devs);
    json_decref(disks);
    json_decref(root);
    return NULL;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int vm_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         struct err *e)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return err_set(e, -ENAMETOOLONG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return err_set(e, -errno, "%s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    int r = 0;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = err_set(e, -errno, "%s: write: %s", tmp, strerror(errno));
            goto fail;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) < 0) {
        r = err_set(e, -errno, "%s: fsync: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        r = err_set(e, -errno, "%s: close: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        r = err_set(e, -errno, "%s: rename: %s", path, strerror(errno));
        goto fail;
    }
    fsync_dir_of(path);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return r;
}

int vm_def_save(const struct vm_def *d, const char *file, struct err *e)
{
    json_t *j = vm_def_to_json(d);
    if (!j)
        return err_set(e, -ENOMEM, "out of memory");
    /* never write what the loader would refuse */
    struct vm_def check;
    int r = vm_def_from_json(&check, j, file, NULL, e);
    if (r < 0) {
        json_decref(j);
        return r;
    }
    vm_def_free(&check);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text)
        return err_set(e, -ENOMEM, "out of memory");
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return err_set(e, -ENOMEM, "out of memory");
    }
    withnl[n] = '\n';
    withnl[n + 1] = 0;
    r = vm_write_file_atomic(file, withnl, n + 1, 0600, e);
    free(withnl);
    return r;
}

/* --- the state directory ---------------------------------------------------- */

int vm_state_dir_resolve(char *buf, size_t len, const char *petrel_home, uid_t euid,
                         const char *home, struct err *e)
{
    int n;
    if (petrel_home && *petrel_home)
        n = snprintf(buf, len, "%s", petrel_home);
    else if (euid == 0)
        n = snprintf(buf, len, "/var/lib/petrel");
    else if (home && *home)
        n = snprintf(buf, len, "%s/.local/share/petrel", home);
    else
        return err_set(e, -ENOENT, "cannot find the state directory: set $PETREL_HOME or "
                       "$HOME");
    if (n < 0 || (size_t)n >= len)
        return err_set(e, -ENAMETOOLONG, "the state directory's path is too long");
    /* no trailing slashes (but keep "/") */
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = 0;
    return 0;
}

int vm_mkdir_p(const char *path, unsigned mode, struct err *e)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return err_set(e, -ENAMETOOLONG, "%s: path too long", path);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return err_set(e, -errno, "%s: mkdir: %s", tmp, strerror(errno));
        if (!saved)
            break;
        *p = saved;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_set(e, -ENOTDIR, "%s: not a directory", path);
    return 0;
}

int vm_state_dir(char *buf, size_t len, struct err *e)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
    }
    char dir[PATH_MAX];
    int r = vm_state_dir_resolve(dir, sizeof(dir), getenv("PETREL_HOME"), geteuid(), home, e);
    if (r < 0)
        return r;
    char vms[PATH_MAX + 8];
    snprintf(vms, sizeof(vms), "%s/vms", dir);
    if ((r = vm_mkdir_p(vms, 0700, e)) < 0)
        return r;
    char *abs = realpath(dir, NULL);
    if (!abs)
        return err_set(e, -errno, "%s: %s", dir, strerror(errno));
    if (snprintf(buf, len, "%s", abs) >= (int)len) {
        free(abs);
        return err_set(e, -ENAMETOOLONG, "the state directory's path is too long");
    }
    free(abs);
    return 0;
}

