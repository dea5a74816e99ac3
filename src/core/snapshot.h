/* VM snapshots: the state file's container and the typed writer/reader
 * every device uses to save and load its state.
 *
 * Design (docs/snapshots.md has the whole feature)
 * - A snapshot is a directory: `state` (this format), `memory` (guest RAM,
 *   raw, zero pages left as holes; a diff snapshot holds only the pages
 *   written since its parent) and, for qcow2 disks, an internal snapshot
 *   in each image named after the snapshot.
 * - The state file, all integers little endian:
 *     header   magic "PETRELVM", u32 format version, u32 header bytes,
 *              char petrel_version[16], char arch[16], u64 mem_size,
 *              u32 cpus, u32 sections, u64 created (unix ns), u32 flags,
 *              12 reserved bytes (zero): 88 bytes
 *     section  char name[24] (NUL padded), u32 version, u32 reserved,
 *              u64 length, then `length` bytes of payload padded with
 *              zeroes to a multiple of 8  ... `sections` times
 *     trailer  u32 crc32 (zlib's) of everything before it, u32 "END!"
 *   The reader checks the whole container (size limit, magic, versions,
 *   lengths, checksum) before any section is looked at, and each section's
 *   reader checks every field against explicit limits before the device
 *   uses or allocates anything from it.
 * - Sections are named after what they hold ("config", "cpu0", "clint",
 *   "plic", "uart0", "pci", "pci-00.02", ...); a device loads its own by
 *   name.  Loading fails when a section the VM needs is missing, and
 *   snap_file_check_used fails when a section was left unused (the
 *   snapshot's machine has something this one lacks), each with a message
 *   naming it.
 * - Writers never fail midway: allocation failure is remembered and
 *   reported by snapw_finish.  Readers never read past a section: a short
 *   section sets r->fail, every later read returns 0, and snapr_end reports
 *   it.  So device code reads all its fields, then validates, then calls
 *   snapr_end, then applies what it read.
 *
 * Threads: everything here is plain data; the VM is paused while devices
 * write or read it. */
#ifndef PETREL_SNAPSHOT_H
#define PETREL_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define SNAP_MAGIC "PETRELVM"
#define SNAP_END_MAGIC "END!"
#define SNAP_FORMAT_VERSION 1u
#define SNAP_HEADER_SIZE 88u
#define SNAP_SECTION_HDR 40u
#define SNAP_NAME_LEN 24u
#define SNAP_MAX_SECTIONS 512u
#define SNAP_MAX_STATE (64u << 20)      /* a state file is at most 64 MiB */
#define SNAP_MAX_STR 4096u              /* longest string field */
#define SNAP_PAGE 4096u                 /* memory file granularity */

enum { SNAP_FULL = 0, SNAP_DIFF = 1 };  /* header flags: snapshot type */

/* --- writing --- */
struct snap_writer {
    uint8_t *buf;
    size_t len, cap;
    size_t sec_hdr;         /* offset of the open section's header, 0: none */
    unsigned nsections;
    bool oom;
    /* what devices may need while saving (set by the caller) */
    const char *tag;        /* the snapshot's name (qcow2 internal snapshots) */
    struct err *e;          /* where a device reports a failure */
    int failed;             /* a device's negative errno, 0: none */
};

void snapw_init(struct snap_writer *w);
void snapw_free(struct snap_writer *w);
/* Open a section (closing the previous one). */
void snapw_section(struct snap_writer *w, const char *name, uint32_t version);
void snapw_u8(struct snap_writer *w, uint8_t v);
void snapw_u16(struct snap_writer *w, uint16_t v);
void snapw_u32(struct snap_writer *w, uint32_t v);
void snapw_u64(struct snap_writer *w, uint64_t v);
void snapw_bool(struct snap_writer *w, bool v);
void snapw_bytes(struct snap_writer *w, const void *p, size_t len);
/* A string: u32 length + bytes; NULL is written as length 0xffffffff. */
void snapw_str(struct snap_writer *w, const char *s);
/* A device that cannot save records why (the first failure wins). */
int snapw_fail(struct snap_writer *w, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct snap_header {
    char petrel_version[16];
    char arch[16];
    uint64_t mem_size;
    uint32_t cpus;
    uint32_t flags;         /* SNAP_FULL or SNAP_DIFF */
    uint64_t created_ns;
};
/* Close the last section and write header + sections + trailer to path
 * (through a temporary file, fsync, rename: all or nothing). */
int snapw_write_file(struct snap_writer *w, const struct snap_header *h, const char *path,
                     struct err *e);

/* --- reading --- */
struct snap_section {
    char name[SNAP_NAME_LEN + 1];
    uint32_t version;
    const uint8_t *data;
    uint64_t len;
    bool used;
};

struct snap_file {
    uint8_t *buf;
    size_t len;
    struct snap_header h;
    struct snap_section *sec;
    unsigned nsec;
    const char *path;       /* for messages */
    /* what devices may need while loading (set by the caller) */
    const char *tag;
    bool disks_as_is;       /* true: do not revert disks to `tag` (clones) */
    /* actions that change things outside the VM (reverting a disk to its
     * internal snapshot): run by snap_file_commit only once every section
     * has loaded, so a snapshot that fails to load overwrites nothing */
    struct { int (*fn)(void *opaque, struct err *e); void *opaque; } defer[32];
    unsigned ndefer;
};

/* Read and check a whole state file (or a buffer, for tests and the fuzz
 * target: buf is copied).  -EINVAL with a one-line message naming what is
 * wrong; nothing else is allocated on failure. */
int snap_file_read(struct snap_file *f, const char *path, struct err *e);
int snap_file_parse(struct snap_file *f, const void *buf, size_t len, const char *what,
                    struct err *e);
void snap_file_free(struct snap_file *f);
/* -EINVAL naming the first section nobody loaded. */
int snap_file_check_used(const struct snap_file *f, struct err *e);
bool snap_file_has(const struct snap_file *f, const char *name);
/* Queue an action for snap_file_commit (-ENOSPC beyond 32). */
int snap_file_defer(struct snap_file *f, int (*fn)(void *opaque, struct err *e), void *opaque,
                    struct err *e);
/* Run the queued actions in order; stops at the first failure. */
int snap_file_commit(struct snap_file *f, struct err *e);

struct snap_reader {
    const uint8_t *p;
    uint64_t len, off;
    const char *name;       /* the section's */
    uint32_t version;
    bool fail;              /* read past the end */
    char bad[96];           /* first failed check (snapr_check) */
};

/* Find section `name` and check its version is in [min, max]. -EINVAL
 * ("snapshot has no state for NAME" / "NAME: version V not supported"). */
int snap_section(struct snap_file *f, const char *name, uint32_t min_ver, uint32_t max_ver,
                 struct snap_reader *r, struct err *e);
uint8_t snapr_u8(struct snap_reader *r);
uint16_t snapr_u16(struct snap_reader *r);
uint32_t snapr_u32(struct snap_reader *r);
uint64_t snapr_u64(struct snap_reader *r);
bool snapr_bool(struct snap_reader *r);     /* any value but 0/1 is a failed check */
void snapr_bytes(struct snap_reader *r, void *p, size_t len);
/* A string of at most max bytes (max <= SNAP_MAX_STR), malloc'd into *out
 * (NULL for a NULL string); returns 0 or -1 (r->fail/r->bad set). */
int snapr_str(struct snap_reader *r, size_t max, char **out);
/* Record a failed validation: cond false -> r->bad = what (first one kept).
 * Returns cond. */
bool snapr_check(struct snap_reader *r, bool cond, const char *what);
/* 0 if every read stayed inside the section, every check passed and the
 * whole section was consumed; else -EINVAL "state file: NAME: ...". */
int snapr_end(struct snap_reader *r, struct err *e);

#endif
