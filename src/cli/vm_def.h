/* A VM's definition (vms/NAME/vm.json) and the state directory that holds
 * the VMs: what `petrel vm` keeps on disk.  Layout: docs/control-plane.md,
 * "VMs as files".
 *
 * Design
 * - struct vm_def is the parsed, validated definition.  It owns its strings
 *   (vm_def_free releases them).  Loading validates every field against
 *   explicit limits (type, range, unknown fields) before anything is kept;
 *   the error names the file and the field ("...: field 'vcpus': expected an
 *   integer 1..32").  Saving writes the JSON to a temporary file, fsyncs it
 *   and renames it over vm.json, so a reader sees the old or the new
 *   definition, never half of one.
 * - Paths in a definition are relative to the VM's directory unless they
 *   are absolute; NULL kernel/initrd/firmware/append mean `petrel run`'s
 *   defaults (the default guest), firmware "none" means no firmware.
 * - The state directory is $PETREL_HOME, else /var/lib/petrel for root, else
 *   ~/.local/share/petrel; it and vms/ are created 0700 on first use.
 *
 * Threads: none; plain functions.
 *
 * What can fail: loading (missing or unreadable file, a file over
 * VM_DEF_MAX_FILE bytes, JSON syntax, a field of the wrong type or out of
 * range, an unknown field) and saving (I/O), with a one-line message in
 * struct err; out of memory is -ENOMEM. */
#ifndef PETREL_CLI_VM_DEF_H
#define PETREL_CLI_VM_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/log.h"
#include "sandbox/cgroup.h"

#define VM_DEF_FORMAT "petrel-vm"
#define VM_DEF_VERSION 1
#define VM_DEF_FILE "vm.json"
#define VM_DEF_MAX_FILE (1u << 20)        /* bytes of vm.json */
#define VM_NAME_MAX 63
#define VM_DEF_MAX_DISKS 15               /* 16 virtio-blk slots less the config disk */
#define VM_DEF_MAX_DEVICES 16
#define VM_DEF_MIN_MEMORY_MIB 16u
#define VM_DEF_MAX_MEMORY_MIB 65536u      /* 64G, `petrel run`'s limit */
#define VM_DEF_MAX_CPUS_RISCV64 32u
#define VM_DEF_MAX_CPUS_X86_64 64u
#define VM_DEF_MAX_PATH 4095
#define VM_DEF_MAX_APPEND 4096
#define VM_DEF_MAX_DEVICE_SPEC 1024
#define VM_DEF_MAX_SERIAL 20
#define VM_DEF_MAX_KEYS (64u << 10)       /* authorized_keys bytes */
#define VM_DEF_CONFIG_SERIAL "petrel-config"
#define VM_DEF_MAX_TAG 64                 /* snapshot tags: [A-Za-z0-9._-]{1,64} */

struct vm_disk_def {
    char *path;             /* relative to the VM's directory, or absolute */
    char *format;           /* "raw", "qcow2", or NULL: probed */
    bool readonly;
    char *serial;           /* NULL: none */
};

struct vm_def {
    char *name;
    char *arch;             /* "riscv64" or "x86_64" */
    unsigned vcpus;
    unsigned memory_mib;
    char *kernel;           /* NULL: the default guest's */
    char *initrd;           /* NULL: petrel run's default */
    char *firmware;         /* NULL: the default guest's; "none": none */
    char *append;           /* NULL: petrel run's default */
    struct vm_disk_def disks[VM_DEF_MAX_DISKS];
    unsigned ndisks;
    char *devices[VM_DEF_MAX_DEVICES];  /* --device specs, in order */
    unsigned ndevices;
    unsigned ssh_port;      /* host port forwarded to the guest's 22; 0: picked at start */
    char *authorized_keys;  /* never NULL once loaded; "" for none */
    char *ssh_key_file;     /* the public key file it came from; NULL: unknown */
    bool autostart;
    bool display;           /* a screen, keyboard and tablet, served as VNC on
                             * vnc.sock beside console.sock ("display": true;
                             * written only when set) */
    char *created_utc;      /* NULL: unknown */
    /* clones (`petrel vm clone`, vm_clone.c); written only when set */
    char *restore_from;     /* the snapshot (state + memory) the next start restores:
                             * a directory, relative to the VM's; NULL: cold boot */
    char *cloned_from_vm;   /* the VM this one was cloned from; NULL: not a clone */
    char *cloned_from_snapshot; /* its snapshot the clone started from; NULL: a cold copy */
    /* resource limits ("limits"; written only when one is set): petrel run's
     * --cpu-quota, --cpu-pin, --memory-max, --io-max, --pids-max */
    struct cg_limits limits;
};

/* NAME is [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}. */
bool vm_name_valid(const char *name);

/* A snapshot tag is [A-Za-z0-9._-]{1,64}, not starting with '.' or '-'. */
bool vm_tag_valid(const char *tag);

/* The highest --cpus for arch (0 for an unknown arch). */
unsigned vm_def_max_cpus(const char *arch);

/* Validate a parsed JSON document and fill d (zeroed by the caller or
 * freed).  `file` names the source in messages; expect_name, when not NULL,
 * is the name the definition must carry (its directory's). */
int vm_def_from_json(struct vm_def *d, json_t *root, const char *file, const char *expect_name,
                     struct err *e);
/* Read and validate a vm.json file. */
int vm_def_load(struct vm_def *d, const char *file, const char *expect_name, struct err *e);
/* The limits as vm.json's "limits" object (a new reference; NULL: out of
 * memory). */
json_t *vm_def_limits_json(const struct cg_limits *l);
/* The definition as JSON (a new reference), or NULL when out of memory. */
json_t *vm_def_to_json(const struct vm_def *d);
/* Validate d (by a round trip through its JSON form), then write it to file
 * atomically (temporary file, fsync, rename, fsync of the directory). */
int vm_def_save(const struct vm_def *d, const char *file, struct err *e);
void vm_def_free(struct vm_def *d);

/* Replace *field with a copy of s (NULL clears).  0 or -ENOMEM. */
int vm_def_set_str(char **field, const char *s);

/* Write data to path atomically: path.tmp.PID, fsync, rename, fsync of the
 * directory.  mode: the new file's permissions. */
int vm_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         struct err *e);

/* The state directory from explicit inputs (testable): petrel_home (may be
 * NULL or ""), the effective uid, and home ($HOME; NULL or "": unknown). */
int vm_state_dir_resolve(char *buf, size_t len, const char *petrel_home, uid_t euid,
                         const char *home, struct err *e);
/* The state directory for this process ($PETREL_HOME, $HOME, geteuid(),
 * else the password database), made absolute; it and its vms/ directory are
 * created 0700 when missing. */
int vm_state_dir(char *buf, size_t len, struct err *e);
/* mkdir -p with mode for every directory it creates. */
int vm_mkdir_p(const char *path, unsigned mode, struct err *e);


#endif
