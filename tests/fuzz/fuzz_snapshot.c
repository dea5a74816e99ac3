/* libFuzzer target: snapshot state files (core/snapshot.c's container, the
 * VM's "config" and "memory" sections, and every loader of a riscv64
 * machine: harts, CLINT, PLIC, UART, PCI bus, virtio transport, core and
 * device types).  Whatever the file, loading must not crash, leak, hang or
 * trip a sanitizer; it fails with a message or loads.
 *
 * At start-up a real machine is built (2 harts, 16 MiB, virtio-rng,
 * virtio-keyboard, virtio-net on libslirp), started paused, and snapshotted
 * with vm_snapshot_save: that state file is the base every input edits, so
 * inputs reach past the checksum into the sections.
 *
 * Input:
 *   byte 0         flags: bit 0 set: the input itself is the state file
 *                  (the container parser on raw bytes); otherwise edit the
 *                  base: bit 1 clear: fix the CRC after editing
 *   bytes 1-2      little-endian length to truncate the edited file to (0:
 *                  keep its length)
 *   then records   (u16 offset % length, u8 value): bytes to overwrite */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "core/board.h"
#include "core/snapshot.h"
#include "core/vm.h"

static struct vm *vm;
static uint8_t *base;
static size_t base_len;

static void die(const char *what, const struct err *e)
{
    fprintf(stderr, "fuzz_snapshot: %s: %s\n", what, e->msg);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct err e = { "" };
    log_set_verbose(-2);
    if (!(vm = vm_new(&e)))
        die("vm_new", &e);
    vm_console_stdio(vm, -1, -1, &e);
    struct vm_config *c = &vm->cfg;
    vm_config_set(&c->arch, "riscv64");
    vm_config_set(&c->kernel, "/nonexistent");      /* never read: restore mode */
    c->mem_size = 16ull << 20;
    c->cpus = 2;
    const char *devs[] = { "virtio-rng", "virtio-keyboard", "virtio-net" };
    for (unsigned i = 0; i < 3; i++)
        if (vm_config_add_device(c, devs[i], &e) < 0)
            die("device", &e);
    /* RAM from an empty memfd, as a restore maps its memory file */
    int fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)c->mem_size) < 0)
        abort();
    struct vm_restore rs = { fd, 0 };
    vm->restore = &rs;
    if (vm_build(vm, &e) < 0)
        die("vm_build", &e);
    vm->restore = NULL;
    close(fd);
    vm->start_paused = true;
    if (vm_launch(vm, &e) < 0)
        die("vm_launch", &e);
    char dir[] = "/tmp/fuzz-snapshot-XXXXXX", state[64], mem[64];
    if (!mkdtemp(dir))
        abort();
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(mem, sizeof(mem), "%s/memory", dir);
    struct vm_snapshot_params p = { .state_path = state, .mem_path = mem, .type = SNAP_FULL };
    if (vm_snapshot_save(vm, &p, &e) < 0)
        die("vm_snapshot_save", &e);
    struct snap_file f;
    if (snap_file_read(&f, state, &e) < 0)
        die("snap_file_read", &e);
    base_len = f.len;
    base = malloc(base_len);
    memcpy(base, f.buf, base_len);
    snap_file_free(&f);
    unlink(state);
    unlink(mem);
    rmdir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t flags = data[0];
    size_t trunc = data[1] | (size_t)data[2] << 8;
    uint8_t *buf;
    size_t len;
    if (flags & 1) {
        len = size - 3;
        buf = malloc(len ? len : 1);
        memcpy(buf, data + 3, len);
    } else {
        len = base_len;
        buf = malloc(len);
        memcpy(buf, base, len);
        for (size_t i = 3; i + 3 <= size; i += 3) {
            size_t off = (data[i] | (size_t)data[i + 1] << 8) % len;
            buf[off] = data[i + 2];
        }
        if (trunc && trunc < len)
            len = trunc;
        if (!(flags & 2) && len >= 8) {
            uint32_t crc = (uint32_t)crc32(0, buf, (uInt)(len - 8));
            memcpy(buf + len - 8, &crc, 4);     /* little-endian host */
        }
    }
    struct snap_file f;
    struct err e = { "" };
    if (snap_file_parse(&f, buf, len, "fuzz", &e) == 0) {
        if (vm_snapshot_check(&f, &e) == 0 && vm->ops->load(vm, &f, &e) == 0)
            snap_file_check_used(&f, &e);
        f.ndefer = 0;       /* no disks: nothing to commit */
        snap_file_free(&f);
    }
    free(buf);
    return 0;
}
