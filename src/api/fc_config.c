/* Firecracker's REST API: the config file (--config-file), Firecracker's
 * configuration-file layout applied section by section through the same
 * resources as the API (fc_model.c); errors name the file and the JSON
 * path (see fc.h for the design, fc_priv.h for the files). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/fc_priv.h"

static const char fc_only[] =
    "this Firecracker resource is not supported by Petrel (omit it or set it to null)";

static const struct fc_field config_fields[] = {
    { "boot-source", FT_OBJ, .required = false },
    { "drives", FT_ARR, .required = false },
    { "machine-config", FT_OBJ, .required = false },
    { "network-interfaces", FT_ARR, .required = false },
    { "logger", FT_OBJ, .required = false },
    { "metrics", FT_OBJ, .required = false },
    { "entropy", FT_OBJ, .required = false },
    { "balloon", FT_OBJ, .required = false }, { "vsock", FT_OBJ, .required = false },
    { "mmds-config", FT_NULL, .why = fc_only }, { "cpu-config", FT_NULL, .why = fc_only },
    { "pmem", FT_NULL, .why = fc_only }, { "serial", FT_NULL, .why = fc_only },
    { "memory-hotplug", FT_NULL, .why = fc_only },
    { 0 },
};

/* The sections, in the order they are applied; an array is one resource
 * per element. */
static const struct {
    const char *key;
    const struct fc_res *res;
} config_sections[] = {
    { "logger", &fc_logger }, { "metrics", &fc_metrics }, { "machine-config", &fc_machine_put },
    { "boot-source", &fc_boot_source }, { "drives", &fc_drive_put },
    { "network-interfaces", &fc_net_put }, { "entropy", &fc_entropy },
    { "vsock", &fc_vsock }, { "balloon", &fc_balloon_put },
};

static int apply_config(struct fc_req *q, json_t *root)
{
    int ret = 0;
    for (size_t s = 0; ret == 0 && s < sizeof(config_sections) / sizeof(config_sections[0]);
         s++) {
        const char *key = config_sections[s].key;
        json_t *v = fc_jget(root, key), *x;
        size_t i;
        if (json_is_array(v)) {
            json_array_foreach(v, i, x) {
                snprintf(q->where, sizeof(q->where), "%s[%zu]", key, i);
                if ((ret = fc_res_apply(q, config_sections[s].res, x)) < 0)
                    break;
            }
        } else if (v) {
            snprintf(q->where, sizeof(q->where), "%s", key);
            ret = fc_res_apply(q, config_sections[s].res, v);
        }
    }
    return ret;
}

static const struct fc_res config_res = { config_fields, false, apply_config };

int fc_api_load_config_file(struct fc_api *api, const char *path, struct err *e)
{
    struct fc_req q = { .api = api, .file = path, .e = e };
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return err_set(e, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    char *buf = NULL;
    int ret;
    if (fstat(fd, &st) < 0) {
        ret = err_set(e, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = err_set(e, -EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > FC_CONFIG_MAX) {
        ret = err_set(e, -EFBIG, "%s: larger than %d bytes", path, FC_CONFIG_MAX);
        goto out;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        ret = fc_oom(&q);
        goto out;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ret = err_set(e, -errno, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    json_error_t je;
    json_t *root = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        ret = fc_fail(&q, "malformed JSON: %s at line %d, column %d", je.text, je.line,
                      je.column);
        goto out;
    }
    ret = fc_res_apply(&q, &config_res, root);
    json_decref(root);
out:
    free(buf);
    close(fd);
    return ret;
}
