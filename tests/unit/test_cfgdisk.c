/* The config disk (src/cli/cfgdisk.c): the ustar layout checked field by
 * field (magic, octal fields, checksum, 512-byte padding, end marker), and
 * the image extracted by GNU tar and by Python's tarfile with the same
 * contents. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cfgdisk.h"
#include "unit.h"

static unsigned long octal_field(const uint8_t *p, size_t n)
{
    char buf[16];
    memcpy(buf, p, n);
    buf[n] = 0;
    return strtoul(buf, NULL, 8);
}

static void test_layout(void)
{
    const char keys[] = "ssh-ed25519 AAAAC3Nza user@host\n";
    char big[1500];
    memset(big, 'x', sizeof(big));
    struct cfgdisk_file files[] = {
        { "authorized_keys", keys, strlen(keys), 0600 },
        { "empty", "", 0, 0644 },
        { "big", big, sizeof(big), 0644 },
    };
    uint8_t *img;
    size_t len;
    struct err e = { "" };
    int r = cfgdisk_build(files, 3, &img, &len, &e);
    CHECK(r == 0, "build: %s", e.msg);
    if (r)
        return;
    CHECK(len % 512 == 0, "a multiple of 512 bytes: %zu", len);
    CHECK(len >= CFGDISK_MIN_SIZE, "at least the minimum size: %zu", len);
    size_t off = 0;
    for (unsigned i = 0; i < 3; i++) {
        const uint8_t *h = img + off;
        CHECK(!strcmp((const char *)h, files[i].name), "name %u", i);
        CHECK(!memcmp(h + 257, "ustar\0" "00", 8), "ustar magic and version %u", i);
        EQ(h[156], '0');
        EQ(octal_field(h + 100, 8), files[i].mode);
        EQ(octal_field(h + 108, 8), 0);
        EQ(octal_field(h + 124, 12), files[i].len);
        EQ(octal_field(h + 136, 12), CFGDISK_MTIME);
        unsigned sum = 0;
        for (unsigned b = 0; b < 512; b++)
            sum += (b >= 148 && b < 156) ? ' ' : h[b];
        EQ(octal_field(h + 148, 8), sum);
        off += 512;
        CHECK(!memcmp(img + off, files[i].data, files[i].len), "data %u", i);
        size_t padded = (files[i].len + 511) / 512 * 512;
        for (size_t b = files[i].len; b < padded; b++)
            if (img[off + b]) {
                CHECK(0, "padding of %u is not zero at %zu", i, b);
                break;
            }
        off += padded;
    }
    bool zero = true;
    for (size_t b = off; b < len; b++)
        zero &= img[b] == 0;
    CHECK(zero && len - off >= 1024, "two or more zero blocks end the archive");
    free(img);

    /* the same input gives the same bytes */
    uint8_t *img2;
    size_t len2;
    CHECK(cfgdisk_build(files, 3, &img, &len, &e) == 0 &&
          cfgdisk_build(files, 3, &img2, &len2, &e) == 0 && len == len2 &&
          !memcmp(img, img2, len), "reproducible");
    free(img);
    free(img2);

    /* limits */
    char longname[102];
    memset(longname, 'n', 101);
    longname[101] = 0;
    struct cfgdisk_file bad[] = { { longname, "", 0, 0644 } };
    CHECK(cfgdisk_build(bad, 1, &img, &len, &e) == -EINVAL && strstr(e.msg, "file name"),
          "a 101-byte name: %s", e.msg);
    bad[0].name = "/etc/passwd";
    CHECK(cfgdisk_build(bad, 1, &img, &len, &e) == -EINVAL, "an absolute name");
    bad[0].name = "x";
    bad[0].len = CFGDISK_MAX_FILE + 1;
    CHECK(cfgdisk_build(bad, 1, &img, &len, &e) == -EINVAL && strstr(e.msg, "too large"),
          "a file over the limit: %s", e.msg);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    if (buf)
        fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

static void check_extracted(const char *dir, const char *how)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/authorized_keys", dir);
    char *k = slurp(p);
    CHECK(k && !strcmp(k, "ssh-ed25519 AAAAC3Nza user@host\n"), "%s: authorized_keys '%s'",
          how, k ? k : "(missing)");
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600, "%s: authorized_keys is 0600",
          how);
    free(k);
    snprintf(p, sizeof(p), "%s/hostname", dir);
    char *h = slurp(p);
    CHECK(h && !strcmp(h, "web-1.lab\n"), "%s: hostname '%s' ('_' becomes '-')", how,
          h ? h : "(missing)");
    free(h);
}

static void test_extract(void)
{
    char dir[] = "/tmp/petrel-cfgdisk-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char img[256], out[256], cmd[1024];
    snprintf(img, sizeof(img), "%s/config.img", dir);
    struct err e = { "" };
    int r = cfgdisk_write(img, "ssh-ed25519 AAAAC3Nza user@host\n", "web_1.lab", &e);
    CHECK(r == 0, "write: %s", e.msg);
    struct stat st;
    CHECK(stat(img, &st) == 0 && st.st_size % 512 == 0 && (st.st_mode & 0777) == 0600,
          "config.img: %lld bytes, mode %o", (long long)st.st_size, st.st_mode & 0777);

    /* GNU tar: lists exactly the two files, extracts them */
    snprintf(out, sizeof(out), "%s/gnu", dir);
    mkdir(out, 0700);
    snprintf(cmd, sizeof(cmd), "tar -tf %s | tr '\\n' ' '", img);
    FILE *p = popen(cmd, "r");
    char list[256] = "";
    if (p) {
        if (!fgets(list, sizeof(list), p))
            list[0] = 0;
        pclose(p);
    }
    CHECK(!strcmp(list, "authorized_keys hostname "), "tar -t lists '%s'", list);
    snprintf(cmd, sizeof(cmd), "tar -x -o -f %s -C %s", img, out);
    CHECK(system(cmd) == 0, "GNU tar extracts it");
    check_extracted(out, "GNU tar");

    /* Python's tarfile */
    snprintf(out, sizeof(out), "%s/py", dir);
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], \"r:\"); "
             "assert t.getnames() == [\"authorized_keys\", \"hostname\"], t.getnames(); "
             "assert all(m.isreg() and m.uid == 0 for m in t); "
             "t.extractall(sys.argv[2])' %s %s", img, out);
    CHECK(system(cmd) == 0, "Python's tarfile reads and extracts it");
    check_extracted(out, "tarfile");

    /* no keys: an empty authorized_keys */
    CHECK(cfgdisk_write(img, "", "a", &e) == 0, "no keys: %s", e.msg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void)
{
    test_layout();
    test_extract();
    return unit_done("test_cfgdisk");
}
