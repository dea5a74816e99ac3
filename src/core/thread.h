/* Thread kinds and the hook a thread calls once its set-up is done.
 *
 * Design
 * - Every long-lived thread of a VMM is of one kind: the main thread (event
 *   loop, devices, API), an rv64 hart thread, a KVM vCPU thread, a qcow2
 *   worker.  When a thread has finished setting itself up it calls
 *   thread_ready, which names it ("hartN", "vcpuN", "blkN": what ps -T,
 *   top -H and gdb show; the main thread keeps the process's name) and then runs the hook the front end set
 *   (petrel run: the seccomp filter of that kind, src/sandbox/seccomp.h).
 * - core knows nothing of what the hook does; with no hook set (tools, unit
 *   tests) thread_ready only names the thread.
 *
 * What can fail: nothing reported; the hook handles its own errors (the
 * seccomp hook kills the process rather than run a thread unfiltered). */
#ifndef PETREL_THREAD_H
#define PETREL_THREAD_H

enum thread_kind { THREAD_VMM, THREAD_HART, THREAD_VCPU, THREAD_BLK, THREAD_KINDS };

typedef void (*thread_hook_fn)(enum thread_kind kind);

/* Set the hook (before any thread of the VM starts; NULL: none). */
void thread_set_hook(thread_hook_fn fn);
/* The calling thread is set up: name it (index: hart or vCPU number;
 * ignored for vmm; blk threads are numbered in start order) and run the
 * hook. */
void thread_ready(enum thread_kind kind, unsigned index);
/* "vmm", "hart", "vcpu", "blk". */
const char *thread_kind_name(enum thread_kind kind);

#endif
