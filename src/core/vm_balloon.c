/* The VM's side of the memory balloon: the API reaches the device through
 * the ops it registered (core/vm.h), under the device lock. */
#include <errno.h>
#include <string.h>

#include "core/vm.h"

void vm_set_balloon(struct vm *vm, const struct vm_balloon_ops *ops, void *opaque)
{
    vm->balloon_ops = ops;
    vm->balloon = ops ? opaque : NULL;
}

static int no_balloon(struct vm *vm, struct err *e)
{
    if (!vm->board)
        return err_set(e, -ENODEV, "the machine is not running");
    return err_set(e, -ENODEV, "the VM has no balloon device");
}

int vm_balloon_info(struct vm *vm, struct vm_balloon_info *out, struct err *e)
{
    if (!vm->board || !vm->balloon_ops)
        return no_balloon(vm, e);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&vm->dev_lock);
    vm->balloon_ops->info(vm->balloon, out);
    pthread_mutex_unlock(&vm->dev_lock);
    return 0;
}

int vm_balloon_set_target(struct vm *vm, uint64_t mib, struct err *e)
{
    if (!vm->board || !vm->balloon_ops)
        return no_balloon(vm, e);
    pthread_mutex_lock(&vm->dev_lock);
    int ret = vm->balloon_ops->set_target(vm->balloon, mib, e);
    pthread_mutex_unlock(&vm->dev_lock);
    return ret;
}

int vm_balloon_set_stats_interval(struct vm *vm, unsigned s, struct err *e)
{
    if (!vm->board || !vm->balloon_ops)
        return no_balloon(vm, e);
    pthread_mutex_lock(&vm->dev_lock);
    int ret = vm->balloon_ops->set_stats_interval(vm->balloon, s, e);
    pthread_mutex_unlock(&vm->dev_lock);
    return ret;
}
