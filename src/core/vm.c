#include "core/vm.h"

#include "core/evloop.h"
#include "core/log.h"

void vm_poll(struct vm *vm, uint64_t timeout_ns)
{
    if (vm->deadline_ns) {
        uint64_t now = time_now_ns();
        if (now >= vm->deadline_ns) {
            vm_request_exit(vm, VM_EXIT_TIMEOUT, 0);
            return;
        }
        if (timeout_ns > vm->deadline_ns - now)
            timeout_ns = vm->deadline_ns - now;
    }
    console_poll(&vm->con, timeout_ns, vm->loop ? evloop_fd(vm->loop) : -1);
    if (vm->loop)
        evloop_dispatch(vm->loop);
    if (vm->con.quit)
        vm_request_exit(vm, VM_EXIT_QUIT, 0);
    if (vm->con.panic_seen)
        vm_request_exit(vm, VM_EXIT_PANIC, 0);
}

int vm_exit_status(const struct vm *vm)
{
    switch (vm->exit_reason) {
    case VM_EXIT_POWEROFF: return PETREL_EXIT_POWEROFF;
    case VM_EXIT_QUIT: return PETREL_EXIT_POWEROFF;
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
    }
    return "?";
}
