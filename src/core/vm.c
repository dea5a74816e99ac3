#include "core/vm.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/board.h"
#include "core/evloop.h"
#include "core/log.h"

static void exit_ready(void *opaque);

struct vm *vm_new(struct err *e)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    vm->start_ns = time_now_ns();
    vm->exit_efd = -1;
    vm->sig_fd = -1;
    vm->con.in_fd = vm->con.out_fd = vm->con.notify_fd = -1;
    pthread_mutex_init(&vm->dev_lock, NULL);
    vm->loop = evloop_new(e);
    if (!vm->loop)
        goto fail;
    evloop_set_lock(vm->loop, &vm->dev_lock);
    vm->exit_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (vm->exit_efd < 0) {
        err_set(e, -errno, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (evloop_add_ctl(vm->loop, vm->exit_efd, exit_ready, vm, e) < 0)
        goto fail;
    return vm;
fail:
    vm_free(vm);
    return NULL;
}

static void stop_cpus(struct vm *vm)
{
    if (vm->state == VM_STATE_RUNNING || vm->state == VM_PAUSED) {
        vm->ops->stop(vm);
        vm->state = VM_STOPPED;
    }
}

void vm_free(struct vm *vm)
{
    if (!vm)
        return;
    stop_cpus(vm);
    if (vm->ops && vm->board)
        vm->ops->destroy(vm);
    vm->nstat_src = 0;
    vm_set_balloon(vm, NULL, NULL);
    console_restore(&vm->con);
    evloop_timer_free(vm->watchdog);
    evloop_timer_free(vm->stop_timer);
    if (vm->loop && vm->exit_efd >= 0)
        evloop_del(vm->loop, vm->exit_efd);
    if (vm->exit_efd >= 0)
        close(vm->exit_efd);
    if (vm->loop && vm->sig_fd >= 0)
        evloop_del(vm->loop, vm->sig_fd);
    if (vm->sig_fd >= 0)
        close(vm->sig_fd);
    evloop_free(vm->loop);
    vm_config_free(&vm->cfg);
    free(vm->snap_parent);
    pthread_mutex_destroy(&vm->dev_lock);
    free(vm);
}

const struct board_ops *vm_board(const char *arch)
{
    static const struct board_ops *const boards[] = { &riscv_virt_board, &x86_pc_board };
    for (unsigned i = 0; arch && i < sizeof(boards) / sizeof(boards[0]); i++)
        if (!strcmp(arch, boards[i]->arch))
            return boards[i];
    return NULL;
}

int vm_guest_dir(const char *arch, char *buf, size_t len)
{
    const char *env = getenv("PETREL_GUEST_DIR");
    if (env && *env)
        return snprintf(buf, len, "%s/%s", env, arch) >= (int)len ? -1 : 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    return snprintf(buf, len, "%s/guest/%s", exe, arch) >= (int)len ? -1 : 0;
}

int vm_config_defaults(struct vm_config *c, struct err *e)
{
    if (!c->arch && vm_config_set(&c->arch, "riscv64") < 0)
        return err_set(e, -ENOMEM, "out of memory");
    const struct board_ops *b = vm_board(c->arch);
    if (!b)
        return err_set(e, -EINVAL, "unknown architecture '%s' (riscv64 or x86_64)", c->arch);
    char dir[PATH_MAX], path[PATH_MAX + 64];
    bool have_dir = vm_guest_dir(b->arch, dir, sizeof(dir)) == 0;
    if (!c->kernel) {
        if (!have_dir)
            return err_set(e, -ENOENT, "cannot locate the default guest; give a kernel");
        snprintf(path, sizeof(path), "%s/%s", dir, b->default_kernel);
        if (vm_config_set(&c->kernel, path) < 0)
            return err_set(e, -ENOMEM, "out of memory");
        if (!c->initrd && b->default_initrd) {
            snprintf(path, sizeof(path), "%s/%s", dir, b->default_initrd);
            if (vm_config_set(&c->initrd, path) < 0)
                return err_set(e, -ENOMEM, "out of memory");
        }
    }
    if (c->firmware && !strcmp(c->firmware, "none")) {
        vm_config_set(&c->firmware, NULL);
    } else if (!c->firmware && b->default_firmware) {
        if (!have_dir)
            return err_set(e, -ENOENT, "cannot locate the default firmware; give one");
        snprintf(path, sizeof(path), "%s/%s", dir, b->default_firmware);
        if (vm_config_set(&c->firmware, path) < 0)
            return err_set(e, -ENOMEM, "out of memory");
    }
    return 0;
}

static void console_event(void *opaque)
{
    struct vm *vm = opaque;
    if (vm->con.quit)
        vm_request_exit(vm, VM_EXIT_QUIT, 0);
    if (vm->con.panic_seen)
        vm_request_exit(vm, VM_EXIT_PANIC, 0);
}

int vm_console_stdio(struct vm *vm, int in_fd, int out_fd, struct err *e)
{
    int ret = console_init(&vm->con, in_fd, out_fd, e);
    if (ret < 0)
        return ret;
    vm->con.on_event = console_event;
    vm->con.event_opaque = vm;
    return console_attach(&vm->con, vm->loop, e);
}

int vm_console_server(struct vm *vm, const char *sock, const char *log, struct err *e)
{
    int ret = vm_console_stdio(vm, -1, -1, e);
    if (ret < 0)
        return ret;
    return console_server_start(&vm->con, sock, log, e);
}

int vm_signals(struct vm *vm, const sigset_t *set, void (*fn)(void *vm), struct err *e)
{
    vm->sig_fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (vm->sig_fd < 0)
        return err_set(e, -errno, "signalfd: %s", strerror(errno));
    return evloop_add_ctl(vm->loop, vm->sig_fd, fn, vm, e);
}

int vm_signal_fd(const struct vm *vm)
{
    return vm->sig_fd;
}

static void watchdog_fire(void *opaque)
{
    struct vm *vm = opaque;
    pthread_mutex_lock(&vm->dev_lock);
    vm_request_exit(vm, VM_EXIT_TIMEOUT, 0);
    pthread_mutex_unlock(&vm->dev_lock);
}

/* Build the machine (board create) from vm->cfg: the first half of
 * vm_start, shared with vm_restore. */
int vm_build(struct vm *vm, struct err *e)
{
    if (vm->state != VM_NOT_STARTED)
        return err_set(e, -EINVAL, "the VM was already started");
    const struct board_ops *b = vm_board(vm->cfg.arch);
    if (!b)
        return err_set(e, -EINVAL, "unknown architecture '%s' (riscv64 or x86_64)",
                       vm->cfg.arch ? vm->cfg.arch : "");
    if (!vm->cfg.kernel)
        return err_set(e, -EINVAL, "no kernel given");
    if (vm->cfg.cpus < 1 || vm->cfg.cpus > b->max_cpus)
        return err_set(e, -EINVAL, "%u CPUs: %s guests have 1 to %u", vm->cfg.cpus, b->arch,
                       b->max_cpus);
    if (vm->cfg.timeout_s && !vm->watchdog) {
        vm->watchdog = evloop_timer_new(vm->loop, false, watchdog_fire, vm, e);
        if (!vm->watchdog)
            return -ENOMEM;
    }
    vm->ops = b;
    vm->nstat_src = 0;
    vm_set_balloon(vm, NULL, NULL);
    int ret = b->create(vm, e);
    if (ret == 0 && b->save && (ret = gmem_dirty_enable(&vm->mem, e)) < 0)
        b->destroy(vm);
    if (ret < 0) {
        memset(&vm->bus, 0, sizeof(vm->bus));
        vm->nstat_src = 0;
        vm_set_balloon(vm, NULL, NULL);
        vm->ops = NULL;
        return ret;
    }
    return 0;
}

/* Undo vm_build (nothing started). */
void vm_unbuild(struct vm *vm)
{
    if (vm->ops && vm->board)
        vm->ops->destroy(vm);
    memset(&vm->bus, 0, sizeof(vm->bus));
    vm->nstat_src = 0;
    vm_set_balloon(vm, NULL, NULL);
    vm->ops = NULL;
}

/* Start the CPUs of a built machine: the second half of vm_start. */
int vm_launch(struct vm *vm, struct err *e)
{
    const struct board_ops *b = vm->ops;
    vm->boot_ns = time_now_ns();
    vm->state = VM_STATE_RUNNING;
    int ret = b->start(vm, e);
    if (ret < 0) {
        vm->state = VM_STOPPED;
        return ret;
    }
    if (vm->start_paused) {
        vm->start_paused = false;
        vm->paused_at_ns = time_now_ns();
        vm->state = VM_PAUSED;
    }
    if (vm->watchdog)
        evloop_timer_set(vm->watchdog, (uint64_t)vm->cfg.timeout_s * 1000000000ull, 0);
    if (vm->on_launch)
        vm->on_launch(vm->on_launch_opaque);
    return 0;
}

int vm_start(struct vm *vm, struct err *e)
{
    int ret = vm_build(vm, e);
    if (ret < 0)
        return ret;
    log_info("booting %s with %lluM, %u cpu(s)", vm->cfg.kernel,
             (unsigned long long)(vm->cfg.mem_size >> 20), vm->cfg.cpus);
    return vm_launch(vm, e);
}

int vm_pause(struct vm *vm, struct err *e)
{
    if (vm->state == VM_PAUSED)
        return 0;
    if (vm->state != VM_STATE_RUNNING)
        return err_set(e, -EINVAL, "the VM is %s, not running", vm_state_name(vm->state));
    vm->ops->pause(vm);
    vm->paused_at_ns = time_now_ns();
    vm->state = VM_PAUSED;
    return 0;
}

int vm_resume(struct vm *vm, struct err *e)
{
    if (vm->state == VM_STATE_RUNNING)
        return 0;
    if (vm->state != VM_PAUSED)
        return err_set(e, -EINVAL, "the VM is %s, not paused", vm_state_name(vm->state));
    vm->paused_ns += time_now_ns() - vm->paused_at_ns;
    vm->state = VM_STATE_RUNNING;
    vm->ops->resume(vm);
    return 0;
}

int vm_power_button(struct vm *vm, struct err *e)
{
    if (vm->state != VM_STATE_RUNNING)
        return err_set(e, -EINVAL, "the VM is %s, not running", vm_state_name(vm->state));
    if (!vm->ops->power_button)
        return err_set(e, -ENOTSUP, "this machine has no power button");
    pthread_mutex_lock(&vm->dev_lock);
    int ret = vm->ops->power_button(vm, e);
    pthread_mutex_unlock(&vm->dev_lock);
    return ret;
}

static void stop_timer_fire(void *opaque)
{
    struct vm *vm = opaque;
    log_info("the guest did not power off in time: stopping it");
    pthread_mutex_lock(&vm->dev_lock);
    vm_request_exit(vm, VM_EXIT_STOPPED, 0);
    pthread_mutex_unlock(&vm->dev_lock);
}

int vm_stop(struct vm *vm, unsigned timeout_s, bool force, struct err *e)
{
    if (!force && timeout_s && vm->state == VM_PAUSED) {
        struct err re;
        if (vm_resume(vm, &re) < 0)
            force = true;
    }
    if (!force && timeout_s && vm->state == VM_STATE_RUNNING) {
        struct err pe;
        if (vm_power_button(vm, &pe) == 0) {
            if (!vm->stop_timer) {
                vm->stop_timer = evloop_timer_new(vm->loop, false, stop_timer_fire, vm, e);
                if (!vm->stop_timer)
                    return -ENOMEM;
            }
            evloop_timer_set(vm->stop_timer, (uint64_t)timeout_s * 1000000000ull, 0);
            return 0;
        }
        log_info("graceful stop: %s; stopping at once", pe.msg);
    }
    pthread_mutex_lock(&vm->dev_lock);
    vm_request_exit(vm, VM_EXIT_STOPPED, 0);
    pthread_mutex_unlock(&vm->dev_lock);
    return 0;
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason r, uint32_t code)
{
    if (vm->exit_reason == VM_RUNNING) {
        vm->exit_reason = r;
        vm->exit_code = code;
    }
    uint64_t one = 1;
    if (vm->exit_efd >= 0 && write(vm->exit_efd, &one, sizeof(one)) < 0)
        log_error("cannot wake the event loop: %s", strerror(errno));
}

/* The VM has ended (or is to end before it started): stop the CPUs, flush
 * the console and leave the loop. */
static void exit_ready(void *opaque)
{
    struct vm *vm = opaque;
    uint64_t v;
    if (read(vm->exit_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
    stop_cpus(vm);
    vm->state = vm->state == VM_NOT_STARTED ? VM_NOT_STARTED : VM_STOPPED;
    pthread_mutex_lock(&vm->dev_lock);
    console_flush(&vm->con);
    pthread_mutex_unlock(&vm->dev_lock);
    if (vm->on_exit)
        vm->on_exit(vm->on_exit_opaque);
    evloop_stop(vm->loop);
}

int vm_run(struct vm *vm)
{
    evloop_run(vm->loop);
    return vm_exit_status(vm);
}

const char *vm_state_name(enum vm_state s)
{
    switch (s) {
    case VM_NOT_STARTED: return "Not started";
    case VM_STATE_RUNNING: return "Running";
    case VM_PAUSED: return "Paused";
    case VM_STOPPED: return "Stopped";
    }
    return "?";
}

double vm_uptime(const struct vm *vm)
{
    if (!vm->boot_ns)
        return 0;
    uint64_t now = vm->state == VM_PAUSED ? vm->paused_at_ns : time_now_ns();
    return (double)(now - vm->boot_ns - vm->paused_ns) / 1e9;
}

unsigned vm_cpu_count(const struct vm *vm)
{
    return vm->ops ? vm->cfg.cpus : 0;
}

void vm_cpu_stats(struct vm *vm, unsigned i, struct vm_cpu_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (vm->ops && vm->board && vm->ops->cpu_stats && i < vm->cfg.cpus)
        vm->ops->cpu_stats(vm, i, out);
}

void vm_add_stat_source(struct vm *vm, enum vm_dev_kind kind, vm_stats_fn fn, void *opaque)
{
    if (vm->nstat_src < VM_MAX_STAT_SOURCES)
        vm->stat_src[vm->nstat_src++] = (typeof(vm->stat_src[0])){ kind, fn, opaque, NULL };
}

void vm_set_limit_fn(struct vm *vm, void *opaque, vm_limit_fn fn)
{
    for (unsigned i = vm->nstat_src; i-- > 0;)
        if (vm->stat_src[i].opaque == opaque) {
            vm->stat_src[i].limit = fn;
            return;
        }
}

int vm_set_limit(struct vm *vm, enum vm_dev_kind kind, unsigned index, unsigned which,
                 const struct rl_config *c, struct err *e)
{
    if (!vm->board)
        return err_set(e, -ENODEV, "the machine is not running");
    int ret = err_set(e, -ENODEV, "no such device");
    pthread_mutex_lock(&vm->dev_lock);
    for (unsigned i = 0, n = 0; i < vm->nstat_src; i++) {
        if (vm->stat_src[i].kind != kind || n++ != index)
            continue;
        ret = vm->stat_src[i].limit ? vm->stat_src[i].limit(vm->stat_src[i].opaque, which, c, e)
                                    : err_set(e, -ENOTSUP, "the device has no rate limiter");
        break;
    }
    pthread_mutex_unlock(&vm->dev_lock);
    return ret;
}

unsigned vm_dev_stats(struct vm *vm, struct vm_dev_stats *out, unsigned max)
{
    unsigned n = 0, nblk = 0, nnet = 0;
    if (!vm->board)
        return 0;
    pthread_mutex_lock(&vm->dev_lock);
    for (unsigned i = 0; i < vm->nstat_src && n < max; i++, n++) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].kind = vm->stat_src[i].kind;
        if (out[n].kind == VM_DEV_BLOCK)
            snprintf(out[n].id, sizeof(out[n].id), "vd%c", 'a' + (nblk++ % 26));
        else
            snprintf(out[n].id, sizeof(out[n].id), "net%u", nnet++);
        vm->stat_src[i].fn(vm->stat_src[i].opaque, &out[n]);
    }
    pthread_mutex_unlock(&vm->dev_lock);
    return n;
}

int vm_exit_status(const struct vm *vm)
{
    switch (vm->exit_reason) {
    case VM_EXIT_POWEROFF: return PETREL_EXIT_POWEROFF;
    case VM_EXIT_QUIT: return PETREL_EXIT_POWEROFF;
    case VM_EXIT_STOPPED: return PETREL_EXIT_POWEROFF;
    case VM_EXIT_REBOOT: return PETREL_EXIT_REBOOT;
    case VM_EXIT_PANIC: return PETREL_EXIT_PANIC;
    case VM_EXIT_TIMEOUT: return PETREL_EXIT_TIMEOUT;
    case VM_EXIT_GUEST_FAIL: return PETREL_EXIT_GUEST_FAIL;
    default: return PETREL_EXIT_ERROR;
    }
}

const char *vm_exit_name(enum vm_exit_reason r)
{
    switch (r) {
    case VM_RUNNING: return "running";
    case VM_EXIT_POWEROFF: return "guest powered off";
    case VM_EXIT_REBOOT: return "guest rebooted";
    case VM_EXIT_PANIC: return "guest kernel panic";
    case VM_EXIT_TIMEOUT: return "timeout expired";
    case VM_EXIT_GUEST_FAIL: return "guest reported failure";
    case VM_EXIT_QUIT: return "quit from console";
    case VM_EXIT_ERROR: return "VMM error";
    case VM_EXIT_STOPPED: return "stopped";
    }
    return "?";
}
