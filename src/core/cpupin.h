/* Host CPUs for guest-CPU threads (`petrel run --cpu-pin`): guest-CPU
 * thread i runs on host CPU cpu[i % n].  The affinity goes into the
 * thread's creation attribute, so glibc sets it from the creating thread
 * while the new thread waits to start: nothing to do (no syscall) on the
 * guest-CPU thread itself, whatever its seccomp filter allows.
 *
 * Threads: none; the creating thread calls cpu_pin_attr. */
#ifndef PETREL_CPUPIN_H
#define PETREL_CPUPIN_H

#include <pthread.h>
#include <stdbool.h>

#define CPU_PIN_MAX 256         /* entries in a list */
#define CPU_PIN_MAX_CPU 1023    /* highest CPU number (CPU_SETSIZE - 1) */

struct cpu_pin {
    unsigned n;                 /* 0: not pinned */
    unsigned short cpu[CPU_PIN_MAX];
};

/* Initialise attr for guest-CPU thread i: pinned when p pins.  0 or a
 * positive errno (as pthread functions); destroy attr afterwards. */
int cpu_pin_attr(const struct cpu_pin *p, unsigned i, pthread_attr_t *attr);

#endif
