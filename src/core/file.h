#ifndef PETREL_FILE_H
#define PETREL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

struct file_buf {
    uint8_t *data;
    size_t size;
};

/* Read a whole regular file of at most max_size bytes.  `what` names it in
 * error messages ("kernel", "initrd", ...). */
int file_read(const char *path, size_t max_size, const char *what, struct file_buf *out,
              struct err *e);
void file_free(struct file_buf *f);

#endif
