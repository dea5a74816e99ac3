#include "core/thread.h"

#include <pthread.h>
#include <stdio.h>

static thread_hook_fn hook;
static unsigned blk_count;

void thread_set_hook(thread_hook_fn fn)
{
    hook = fn;
}

const char *thread_kind_name(enum thread_kind kind)
{
    static const char *const names[THREAD_KINDS] = { "vmm", "hart", "vcpu", "blk" };
    return kind < THREAD_KINDS ? names[kind] : "?";
}

void thread_ready(enum thread_kind kind, unsigned index)
{
    char name[16];
    if (kind == THREAD_BLK)
        index = __atomic_fetch_add(&blk_count, 1, __ATOMIC_RELAXED);
    /* the main thread keeps the process's name (ps, pkill petrel) */
    if (kind != THREAD_VMM) {
        if (kind == THREAD_VCPU || kind == THREAD_HART || kind == THREAD_BLK)
            snprintf(name, sizeof(name), "%s%u", thread_kind_name(kind), index % 100000);
        else
            snprintf(name, sizeof(name), "%s", thread_kind_name(kind));
        pthread_setname_np(pthread_self(), name);
    }
    if (hook)
        hook(kind);
}
