/* The jailer (`petrel run --jail DIR`): the VMM runs in its own mount, pid,
 * ipc, uts and network namespaces, with a root that holds only this VM's
 * files, as an unprivileged uid with no_new_privs and rlimits.
 *
 * Model (docs/jail.md):
 * - Every path on the command line means what it means on the host.  Files
 *   the VM reads (kernel, initrd, firmware, disks and their backing chains,
 *   --config-file, --restore's directory) are bind-mounted into the jail at
 *   their canonical host path (read-only unless a writable disk).  Files
 *   Petrel creates (sockets, logs) must lie in DIR, which is bind-mounted
 *   into the jail at its own host path, read-write: the host reaches the
 *   API socket at the path it gave.
 * - The jail's root is a small read-only tmpfs private to the VMM's mount
 *   namespace (nothing is created on the host but what the VM writes in
 *   DIR; every mount goes away with the namespace), holding the mount
 *   points, /dev/null, /dev/urandom, /dev/kvm or /dev/net/tun when needed,
 *   and a /proc of the VMM's own pid namespace (its own pid directories
 *   only: subset=pid).
 * - A new pid namespace needs a fork: jail_enter forks; the child becomes
 *   pid 1 of the namespace and runs the VMM; the parent stays outside,
 *   forwards SIGTERM, SIGINT and SIGHUP to it and exits with its status.
 *
 * Usage: jail_new (checks: root, DIR, uid/gid, netns), jail_add_* for every
 * file (each returns the path the VMM must use from then on), jail_enter.
 * All checks happen before jail_enter forks: a bad input is one error and
 * nothing started or mounted. */
#ifndef PETREL_SANDBOX_JAIL_H
#define PETREL_SANDBOX_JAIL_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "core/log.h"

struct jail_config {
    const char *dir;            /* --jail DIR */
    const char *uid, *gid;      /* --uid, --gid as given (names or numbers); NULL: stay root */
    const char *netns;          /* --netns PATH; NULL: a new, empty network namespace */
    uint64_t fsize;             /* RLIMIT_FSIZE in bytes; 0: unlimited */
    uint64_t nofile;            /* RLIMIT_NOFILE; 0: the default (JAIL_NOFILE) */
};

#define JAIL_NOFILE 4096

struct jail;

struct jail *jail_new(const struct jail_config *c, struct err *e);
void jail_free(struct jail *j);

/* A file the VM reads (rw: writes too): *path is replaced by its canonical
 * absolute path (a string the jail owns). */
int jail_add_file(struct jail *j, const char **path, bool rw, const char *what, struct err *e);
/* A directory the VM reads (--restore DIR), bound read-only. */
int jail_add_dir(struct jail *j, const char **path, const char *what, struct err *e);
/* A disk and, for qcow2, its backing chain (each at the path the chain
 * names, relative to the overlay's canonical directory). */
int jail_add_disk(struct jail *j, struct disk_config *d, struct err *e);
/* A file Petrel creates (socket, log): must lie in DIR; *path is replaced
 * by its absolute path. */
int jail_add_output(struct jail *j, const char **path, const char *what, struct err *e);
/* A host device node (/dev/kvm, /dev/net/tun) the VMM opens. */
int jail_add_device(struct jail *j, const char *path, struct err *e);

/* Enter the jail.  Returns 0 in the jailed child (pid 1 of its namespace,
 * as the jail's uid, in its root), or 1 in the parent once the child has
 * ended, with *status its exit status (1 if it died of a signal); <0 with
 * e set if set-up failed (in the child, set-up failures exit 1 there). */
int jail_enter(struct jail *j, int *status, struct err *e);

#endif
