/* The config disk: a small raw disk image that hands a VM its settings
 * (the ssh keys to accept, its host name) at boot.  `petrel vm start`
 * attaches it with serial petrel-config; the default guest reads it.
 *
 * Design
 * - The image is a POSIX ustar archive (what `tar --format=ustar` writes):
 *   one 512-byte header per regular file, its data padded to 512 bytes,
 *   two zero blocks at the end; the whole image is a multiple of 512 bytes
 *   (a disk's sector size) and at least CFGDISK_MIN_SIZE.  GNU tar,
 *   busybox tar and Python's tarfile extract it.
 * - Files are owned by root (uid/gid 0), with fixed modes and a fixed
 *   modification time, so the same input gives the same image.
 *
 * Threads: none.
 *
 * What can fail: a file name over 100 bytes or a file over CFGDISK_MAX_FILE
 * bytes (-EINVAL), out of memory, writing the image (I/O). */
#ifndef PETREL_CLI_CFGDISK_H
#define PETREL_CLI_CFGDISK_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define CFGDISK_BLOCK 512u
#define CFGDISK_MIN_SIZE (16u << 10)
#define CFGDISK_MAX_FILE (1u << 20)
#define CFGDISK_MTIME 1700000000u    /* fixed, for reproducible images */

struct cfgdisk_file {
    const char *name;       /* at most 100 bytes, no leading '/' */
    const void *data;
    size_t len;
    unsigned mode;          /* e.g. 0600 */
};

/* Build the archive in memory: *out (malloc'ed) of *out_len bytes. */
int cfgdisk_build(const struct cfgdisk_file *files, unsigned n, uint8_t **out, size_t *out_len,
                  struct err *e);
/* Build the config disk for a VM (authorized_keys, hostname: the VM's name
 * with '_' turned into '-', and a newline) and write it to path atomically.
 * keys may be "" (the file is then empty). */
int cfgdisk_write(const char *path, const char *authorized_keys, const char *hostname,
                  struct err *e);

#endif
