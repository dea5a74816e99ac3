/* Guest physical memory: a few RAM regions, each one host mapping.
 * Every guest address the VMM touches goes through gmem_ptr(), which checks
 * that [gpa, gpa+len) lies inside one region. */
#ifndef PETREL_MEMORY_H
#define PETREL_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define GMEM_MAX_REGIONS 4

struct gmem_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *hva;
    uint64_t *dirty;    /* one bit per GMEM_PAGE written since the last reset, or NULL */
    bool file_backed;   /* mapped from a file (gmem_add_ram_file), else anonymous */
};

#define GMEM_PAGE 4096ull

struct gmem {
    struct gmem_region r[GMEM_MAX_REGIONS];
    unsigned n;
    /* called for every range marked written, dirty tracking on or off */
    void (*write_hook)(void *opaque, uint64_t gpa, uint64_t len);
    void *write_hook_opaque;
};

int gmem_add_ram(struct gmem *m, uint64_t gpa, uint64_t size, struct err *e);
/* RAM whose contents come from fd at file offset off, mapped privately: pages
 * are read from the file when first touched and copied when first written,
 * so the file is never changed and several VMs share its unwritten pages
 * (snapshot restore).  The file must be at least off + size bytes. */
int gmem_add_ram_file(struct gmem *m, uint64_t gpa, uint64_t size, int fd, uint64_t off,
                      struct err *e);
void gmem_free(struct gmem *m);
/* Host pointer for [gpa, gpa+len), or NULL if not entirely inside RAM. */
void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len);
/* Copy into guest memory with bounds checking; -EFAULT outside RAM. */
int gmem_write(const struct gmem *m, uint64_t gpa, const void *src, uint64_t len);

/* Give guest RAM back to the host (virtio-balloon): the whole host pages
 * inside [hva, hva+len) (which must lie in one region; anything else is
 * ignored) are dropped with MADV_DONTNEED.  Anonymous RAM then reads as
 * zero, RAM mapped privately from a snapshot's memory file as the file's
 * contents (the private copies go; MADV_REMOVE would punch holes in the
 * shared file, so it is not used); either way the host memory is freed
 * and faulted in again when the guest next touches it.  The dirty bitmap
 * is left alone: the guest gave these pages up and must not rely on their
 * contents, so a diff snapshot need not record them.  Returns the bytes
 * dropped (0 on failure). */
uint64_t gmem_discard_hva(const struct gmem *m, void *hva, uint64_t len);

/* Dirty page tracking (diff snapshots).  Once enabled, every writer of guest
 * RAM other than the guest's own stores through the engine's TLB (which
 * marks at fill time) marks what it writes: device DMA (virtqueues), the
 * engine's page-table A/D updates.  Marking is atomic (any thread);
 * gmem_dirty_reset clears every bit (the CPUs must be paused, and engines
 * must forget cached writable translations). */
int gmem_dirty_enable(struct gmem *m, struct err *e);
void gmem_mark_dirty(const struct gmem *m, uint64_t gpa, uint64_t len);
/* The same by host address (inside a region), for device code that holds
 * host pointers; addresses outside RAM are ignored. */
void gmem_mark_dirty_hva(const struct gmem *m, const void *hva, uint64_t len);
void gmem_dirty_reset(struct gmem *m);
/* Be told of every range marked written (gmem_mark_dirty*: device DMA and
 * CPU stores), whether dirty tracking is on or not: the rv64 JIT drops
 * translations of code that devices overwrite.  fn NULL: none. */
void gmem_set_write_hook(struct gmem *m, void (*fn)(void *opaque, uint64_t gpa, uint64_t len),
                         void *opaque);
static inline bool gmem_page_dirty(const struct gmem_region *r, uint64_t page)
{
    return r->dirty && (__atomic_load_n(&r->dirty[page / 64], __ATOMIC_RELAXED) >> (page % 64) & 1);
}

#endif
