/* Comma-separated option strings, the shape QEMU users know:
 * "PATH,format=raw,readonly=on" or "virtio-console,socket=/tmp/s".
 * A comma inside a value is written as two commas (",,"), as in QEMU. */
#ifndef PETREL_OPTS_H
#define PETREL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

/* Take the next comma-separated item from *p into buf (",," unescaped to
 * ","), advancing *p past it.  Returns 1 for an item, 0 at the end of the
 * string, -ENAMETOOLONG (message in e) if the item does not fit in buf. */
int opts_next(const char **p, char *buf, size_t len, struct err *e);
/* Split "key=value" in place: *val points after '=' (NULL if none). */
void opts_split(char *item, char **val);
/* on|off|yes|no|true|false|1|0 -> 1/0, anything else -1 */
int opts_bool(const char *v);
/* A size: digits, then an optional K, M, G or T (binary units, optionally
 * followed by "i", "iB" or "B"); a bare number is shifted by bare_shift
 * (0: bytes, 20: MiB).  0, -EINVAL (not a size) or -ERANGE (too big). */
int opts_size(const char *s, unsigned bare_shift, uint64_t *out);

#endif
