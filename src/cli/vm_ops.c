/* `petrel vm`'s operations for `petrel serve` (vm_ops.h): the commands'
 * own code run with their output captured. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cli/vm_client.h"
#include "cli/vm_ops.h"
#include "cli/vm_priv.h"

static pthread_mutex_t cmd_lock = PTHREAD_MUTEX_INITIALIZER;

/* Run fn with this thread's output captured; e: the first error line. */
#define CAPTURED(e, outp, body)                                          \
    ({                                                                  \
        struct vmx_capture c_;                                          \
        vmx_capture_begin(&c_);                                         \
        int rc_ = (body);                                               \
        vmx_capture_end(&c_, e);                                        \
        if (rc_ && !e->msg[0])                                          \
            err_set(e, -EIO, "failed (no message)");                    \
        if (outp) {                                                     \
            char **o_ = (outp);                                         \
            *o_ = c_.out;                                               \
            c_.out = NULL;                                              \
        }                                                               \
        vmx_capture_free(&c_);                                          \
        rc_ ? 1 : 0;                                                    \
    })

int vm_ops_init(char *state_dir, size_t len, struct err *e)
{
    if (vm_client_init(e) < 0)
        return 1;
    struct vmx x;
    memset(&x, 0, sizeof(x));
    if (CAPTURED(e, (char **)NULL, vmx_init(&x)))
        return 1;
    snprintf(state_dir, len, "%s", x.state);
    return 0;
}

static int list(json_t **out)
{
    struct vmx x;
    memset(&x, 0, sizeof(x));
    if (vmx_init(&x))
        return 1;
    struct strv names = { 0 };
    if (vmx_list_names(&x, &names))
        return 1;
    json_t *arr = json_array();
    for (int i = 0; arr && i < names.n; i++) {
        json_t *o = vmx_vm_summary(&x, names.v[i], 2000, NULL);
        if (o)
            json_array_append_new(arr, o);
    }
    vmx_strv_free(&names);
    if (!arr)
        return vmx_fail("out of memory");
    *out = arr;
    return 0;
}

int vm_ops_list(json_t **out, struct err *e)
{
    *out = NULL;
    return CAPTURED(e, (char **)NULL, list(out));
}

static int info(const char *name, json_t **out)
{
    struct vmx x;
    memset(&x, 0, sizeof(x));
    if (vmx_check_name("info", name) || vmx_init(&x))
        return 1;
    *out = vmx_vm_info(&x, name);
    return *out ? 0 : 1;
}

int vm_ops_info(const char *name, json_t **out, struct err *e)
{
    *out = NULL;
    return CAPTURED(e, (char **)NULL, info(name, out));
}

static int exists(const char *name)
{
    struct vmx x;
    memset(&x, 0, sizeof(x));
    char dir[PATH_MAX + 80];
    if (vmx_check_name("info", name) || vmx_init(&x))
        return 1;
    return vmx_vm_dir_existing(&x, name, dir, sizeof(dir));
}

int vm_ops_exists(const char *name, struct err *e)
{
    return CAPTURED(e, (char **)NULL, exists(name));
}

static int sockets(const char *name, char *api, char *con, size_t len)
{
    struct vmx x;
    memset(&x, 0, sizeof(x));
    char dir[PATH_MAX + 80];
    if (vmx_check_name("console", name) || vmx_init(&x) ||
        vmx_vm_dir_existing(&x, name, dir, sizeof(dir)))
        return 1;
    struct vm_rt rt;
    vmx_rt_get(dir, &rt, 0);
    int rc = vmx_rt_active(&rt) ? 0 : vmx_need_running(name, &rt);
    if (!rc) {
        snprintf(api, len, "%s", rt.api);
        snprintf(con, len, "%s", rt.con);
    }
    vmx_rt_free(&rt);
    return rc;
}

int vm_ops_sockets(const char *name, char *api, char *con, size_t len, struct err *e)
{
    return CAPTURED(e, (char **)NULL, sockets(name, api, con, len));
}

int vm_ops_vnc_socket(const char *name, char *vnc, size_t len, struct err *e)
{
    char api[PATH_MAX], con[PATH_MAX];
    if (vm_ops_sockets(name, api, con, sizeof(con), e))
        return 1;
    vmx_vnc_path(con, vnc, len);
    return 0;
}

int vm_ops_cmd(int argc, char **argv, char **out, struct err *e)
{
    if (out)
        *out = NULL;
    if (argc < 1)
        return err_set(e, -EINVAL, "no command"), 1;
    struct vmx x;
    memset(&x, 0, sizeof(x));
    pthread_mutex_lock(&cmd_lock);
    int rc = CAPTURED(e, out, vmx_cmd_run(&x, argc, argv));
    pthread_mutex_unlock(&cmd_lock);
    return rc;
}

void vm_ops_reap(void)
{
    if (pthread_mutex_trylock(&cmd_lock))
        return;                 /* a command runs (maybe a start waiting for its VMM) */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    pthread_mutex_unlock(&cmd_lock);
}
