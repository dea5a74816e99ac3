/* Reading whole files (kernels, initrds, firmware) with a size limit. */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read(const char *path, size_t max_size, const char *what, struct file_buf *out,
              struct err *e)
{
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, -errno, "cannot open %s '%s': %s", what, path, strerror(errno));
    struct stat st;
    int ret;
    if (fstat(fd, &st) < 0) {
        ret = err_set(e, -errno, "cannot stat %s '%s': %s", what, path, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = err_set(e, -EINVAL, "%s '%s' is not a regular file", what, path);
        goto out_close;
    }
    if (st.st_size == 0) {
        ret = err_set(e, -EINVAL, "%s '%s' is empty", what, path);
        goto out_close;
    }
    if ((uint64_t)st.st_size > max_size) {
        ret = err_set(e, -EFBIG, "%s '%s' is too large (%lld bytes, at most %zu fit)", what,
                      path, (long long)st.st_size, max_size);
        goto out_close;
    }
    out->data = malloc((size_t)st.st_size);
    if (!out->data) {
        ret = err_set(e, -ENOMEM, "out of memory reading %s '%s'", what, path);
        goto out_close;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, out->data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ret = err_set(e, r < 0 ? -errno : -EIO, "cannot read %s '%s': %s", what, path,
                          r < 0 ? strerror(errno) : "short read");
            free(out->data);
            out->data = NULL;
            goto out_close;
        }
        got += (size_t)r;
    }
    out->size = got;
    ret = 0;
out_close:
    close(fd);
    return ret;
}

void file_free(struct file_buf *f)
{
    free(f->data);
    f->data = NULL;
    f->size = 0;
}
