/* `petrel run --jail`: the command line's paths into the jailer. */
#ifndef PETREL_CLI_RUN_JAIL_H
#define PETREL_CLI_RUN_JAIL_H

#include <stdbool.h>

#include "core/vm_config.h"
#include "sandbox/jail.h"

#define RUN_JAIL_MAX_OUTPUTS 8

struct run_jail {
    struct jail_config jc;
    const char **outputs[RUN_JAIL_MAX_OUTPUTS];   /* sockets and logs: rewritten */
    const char *output_what[RUN_JAIL_MAX_OUTPUTS];
    unsigned nout;
    const char **config_file;   /* rewritten */
    const char **restore;       /* rewritten */
    bool api;                   /* the VMM serves the API: load its library first */
    bool boot_now;              /* booting from the command line: the default guest's
                                 * files are named before entering */
};

/* Check, then enter the jail: 0 in the jailed VMM (*out keeps the paths
 * alive: jail_free it after the VM), 1 in the parent once the VMM ended
 * (*status its exit status), <0 with e set (nothing started). */
int run_jail_enter(struct run_jail *rj, struct vm_config *cfg, struct jail **out, int *status,
                   struct err *e);

#endif
