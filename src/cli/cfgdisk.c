/* The config disk: a ustar archive written in C.  See cfgdisk.h. */
#include "cli/cfgdisk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/vm_def.h"

/* POSIX ustar header (IEEE Std 1003.1, pax "ustar Interchange Format"). */
struct ustar_hdr {
    char name[100];
    char mode[8];
    char uid[8];
    char gid[8];
    char size[12];
    char mtime[12];
    char chksum[8];
    char typeflag;
    char linkname[100];
    char magic[6];          /* "ustar\0" */
    char version[2];        /* "00" */
    char uname[32];
    char gname[32];
    char devmajor[8];
    char devminor[8];
    char prefix[155];
    char pad[12];
};
_Static_assert(sizeof(struct ustar_hdr) == CFGDISK_BLOCK, "ustar header is one block");

/* An octal number, NUL-terminated, zero-padded to fill the field. */
static void octal(char *field, size_t width, unsigned long long v)
{
    snprintf(field, width, "%0*llo", (int)width - 1, v);
}

static size_t round_up(size_t v)
{
    return (v + CFGDISK_BLOCK - 1) / CFGDISK_BLOCK * CFGDISK_BLOCK;
}

int cfgdisk_build(const struct cfgdisk_file *files, unsigned n, uint8_t **out, size_t *out_len,
                  struct err *e)
{
    size_t total = 2 * CFGDISK_BLOCK;       /* end-of-archive marker */
    for (unsigned i = 0; i < n; i++) {
        size_t nl = strlen(files[i].name);
        if (!nl || nl > sizeof(((struct ustar_hdr *)0)->name) || files[i].name[0] == '/')
            return err_set(e, -EINVAL, "config disk: bad file name '%s'", files[i].name);
        if (files[i].len > CFGDISK_MAX_FILE)
            return err_set(e, -EINVAL, "config disk: %s: %zu bytes is too large (at most %u)",
                           files[i].name, files[i].len, CFGDISK_MAX_FILE);
        total += CFGDISK_BLOCK + round_up(files[i].len);
    }
    if (total < CFGDISK_MIN_SIZE)
        total = CFGDISK_MIN_SIZE;
    uint8_t *buf = calloc(1, total);
    if (!buf)
        return err_set(e, -ENOMEM, "out of memory");
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        struct ustar_hdr *h = (struct ustar_hdr *)(buf + off);
        memcpy(h->name, files[i].name, strlen(files[i].name));   /* NUL-padded by calloc */
        octal(h->mode, sizeof(h->mode), files[i].mode & 07777);
        octal(h->uid, sizeof(h->uid), 0);
        octal(h->gid, sizeof(h->gid), 0);
        octal(h->size, sizeof(h->size), files[i].len);
        octal(h->mtime, sizeof(h->mtime), CFGDISK_MTIME);
        h->typeflag = '0';
        memcpy(h->magic, "ustar", 6);
        memcpy(h->version, "00", 2);
        strcpy(h->uname, "root");
        strcpy(h->gname, "root");
        octal(h->devmajor, sizeof(h->devmajor), 0);
        octal(h->devminor, sizeof(h->devminor), 0);
        /* checksum: the header's bytes summed with the field read as spaces */
        memset(h->chksum, ' ', sizeof(h->chksum));
        unsigned sum = 0;
        for (unsigned b = 0; b < CFGDISK_BLOCK; b++)
            sum += ((uint8_t *)h)[b];
        snprintf(h->chksum, 7, "%06o", sum);   /* six digits, NUL, space */
        h->chksum[7] = ' ';
        off += CFGDISK_BLOCK;
        if (files[i].len)
            memcpy(buf + off, files[i].data, files[i].len);
        off += round_up(files[i].len);
    }
    *out = buf;
    *out_len = total;
    return 0;
}

int cfgdisk_write(const char *path, const char *authorized_keys, const char *hostname,
                  struct err *e)
{
    /* a VM name may hold '_', a host name may not */
    char host[VM_NAME_MAX + 2];
    snprintf(host, sizeof(host), "%s\n", hostname);
    for (char *p = host; *p; p++)
        if (*p == '_')
            *p = '-';
    const char *keys = authorized_keys ? authorized_keys : "";
    struct cfgdisk_file files[] = {
        { "authorized_keys", keys, strlen(keys), 0600 },
        { "hostname", host, strlen(host), 0644 },
    };
    uint8_t *img;
    size_t len;
    int r = cfgdisk_build(files, 2, &img, &len, e);
    if (r < 0)
        return r;
    r = vm_write_file_atomic(path, img, len, 0600, e);
    free(img);
    return r;
}
