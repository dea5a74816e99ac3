/* Pinning guest-CPU threads: see cpupin.h. */
#include "core/cpupin.h"

#include <sched.h>

int cpu_pin_attr(const struct cpu_pin *p, unsigned i, pthread_attr_t *attr)
{
    int r = pthread_attr_init(attr);
    if (r || !p || !p->n)
        return r;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p->cpu[i % p->n], &set);
    if ((r = pthread_attr_setaffinity_np(attr, sizeof(set), &set)))
        pthread_attr_destroy(attr);
    return r;
}
