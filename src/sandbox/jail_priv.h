/* The jailer's internals, shared by jail.c (checks) and jail_enter.c. */
#ifndef PETREL_SANDBOX_JAIL_PRIV_H
#define PETREL_SANDBOX_JAIL_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "sandbox/jail.h"

#define JAIL_MAX_MOUNTS 128

enum jail_kind { JAIL_FILE, JAIL_DIR, JAIL_DEV };

struct jail_mount {
    char *target;               /* absolute path inside the jail */
    char *source;               /* canonical host path */
    enum jail_kind kind;
    bool rw;
    int fd;                     /* O_PATH of source, from jail_enter on */
};

struct jail {
    char dir[PATH_MAX];         /* DIR, canonical */
    size_t dir_len;
    int dir_fd;                 /* O_PATH of DIR, from jail_enter on (-1: not open) */
    uid_t uid;
    gid_t gid;
    bool drop_uid;              /* --uid given: setresuid; else stay root, no capabilities */
    int netns_fd;               /* -1: a new network namespace */
    uint64_t fsize, nofile;
    struct jail_mount mounts[JAIL_MAX_MOUNTS];
    unsigned nmounts;
    char *strings[JAIL_MAX_MOUNTS];   /* paths handed back to the caller */
    unsigned nstrings;
};

bool jail_may(const struct jail *j, const struct stat *st, unsigned want);
bool jail_in_dir(const struct jail *j, const char *path);

#endif
