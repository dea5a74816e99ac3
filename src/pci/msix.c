/* MSI-X capability, table and PBA (see msix.h). */
#include "pci/msix.h"

#include <errno.h>
#include <string.h>

#include "core/snapshot.h"

static uint16_t msix_flags(const struct pci_msix *m)
{
    return pci_cfg_get16(m->dev, m->cap + PCI_MSIX_FLAGS);
}

bool pci_msix_enabled(const struct pci_msix *m)
{
    return (msix_flags(m) & PCI_MSIX_FLAGS_ENABLE) != 0;
}

static uint32_t entry32(const struct pci_msix *m, unsigned v, unsigned field)
{
    const uint8_t *p = &m->table[v * PCI_MSIX_ENTRY_SIZE + field];
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether a message for v goes out now (else it is held pending). */
static bool deliverable(const struct pci_msix *m, unsigned v)
{
    uint16_t f = msix_flags(m);
    return (f & PCI_MSIX_FLAGS_ENABLE) && !(f & PCI_MSIX_FLAGS_MASKALL) &&
           !(entry32(m, v, PCI_MSIX_ENTRY_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static const struct pci_platform *platform(const struct pci_msix *m)
{
    const struct pci_platform *p = m->dev->bus ? m->dev->bus->plat : NULL;
    return p && p->msi_route_new && p->msi_route_set && p->msi_fire ? p : NULL;
}

/* Make sure v's route carries v's current message; false if it cannot be
 * sent (no route, or the board refused the message). */
static bool sync_route(struct pci_msix *m, unsigned v)
{
    const struct pci_platform *p = platform(m);
    struct pci_msix_vec *s = &m->vec[v];
    if (!p)
        return false;
    uint64_t addr = (uint64_t)entry32(m, v, PCI_MSIX_ENTRY_ADDR_HI) << 32 |
                    entry32(m, v, PCI_MSIX_ENTRY_ADDR_LO);
    uint32_t data = entry32(m, v, PCI_MSIX_ENTRY_DATA);
    if (s->route < 0) {
        struct err e;
        int r = p->msi_route_new(p->opaque, &e);
        if (r < 0) {
            log_guest(&m->dev->bus->log, "pci 00:%02x.0 %s: MSI-X vector %u not delivered: %s",
                      m->dev->slot, m->dev->name, v, e.msg);
            return false;
        }
        s->route = r;
        s->synced = false;
    }
    if (!s->synced || s->addr != addr || s->data != data) {
        s->addr = addr;
        s->data = data;
        s->synced = true;
        s->refused = p->msi_route_set(p->opaque, s->route, addr, data) < 0;
        if (s->refused)
            log_guest(&m->dev->bus->log,
                      "pci 00:%02x.0 %s: MSI-X vector %u: message 0x%x to 0x%llx is not an "
                      "interrupt (dropped)", m->dev->slot, m->dev->name, v, data,
                      (unsigned long long)addr);
    }
    return !s->refused;
}

static void send(struct pci_msix *m, unsigned v)
{
    if (sync_route(m, v))
        platform(m)->msi_fire(platform(m)->opaque, m->vec[v].route);
}

void pci_msix_notify(struct pci_msix *m, unsigned v)
{
    if (v >= m->nvec || !pci_msix_enabled(m))
        return;
    if (deliverable(m, v))
        send(m, v);
    else
        m->pending |= 1ull << v;
}

/* After anything that may have unmasked vectors: program their routes and
 * send what was held back. */
static void unmasked(struct pci_msix *m)
{
    for (unsigned v = 0; v < m->nvec; v++) {
        if (!deliverable(m, v))
            continue;
        sync_route(m, v);
        if (m->pending & (1ull << v)) {
            m->pending &= ~(1ull << v);
            send(m, v);
        }
    }
}

int pci_msix_init(struct pci_msix *m, struct pci_device *d, unsigned nvec, unsigned bar,
                  uint32_t table_off, uint32_t pba_off, struct err *e)
{
    memset(m, 0, sizeof(*m));
    m->dev = d;
    if (nvec < 1 || nvec > PCI_MSIX_MAX_VECTORS)
        return err_set(e, -EINVAL, "%s: %u MSI-X vectors (1 to %d)", d->name, nvec,
                       PCI_MSIX_MAX_VECTORS);
    uint64_t tlen = (uint64_t)nvec * PCI_MSIX_ENTRY_SIZE, plen = 8;
    uint64_t bsize = bar < PCI_NUM_BARS ? d->bar[bar].size : 0;
    if (!bsize || (table_off | pba_off) & 7 || tlen > bsize || table_off > bsize - tlen ||
        plen > bsize || pba_off > bsize - plen ||
        (table_off < pba_off + plen && pba_off < table_off + tlen))
        return err_set(e, -EINVAL, "%s: MSI-X table (0x%x) or PBA (0x%x) do not fit BAR %u",
                       d->name, table_off, pba_off, bar);
    uint8_t cap[PCI_MSIX_CAP_SIZE] = { 0 };
    uint16_t flags = (uint16_t)(nvec - 1);
    uint32_t table = table_off | bar, pba = pba_off | bar;
    memcpy(cap + PCI_MSIX_FLAGS, &flags, 2);
    memcpy(cap + PCI_MSIX_TABLE, &table, 4);
    memcpy(cap + PCI_MSIX_PBA, &pba, 4);
    int off = pci_add_cap(d, PCI_CAP_ID_MSIX, cap, sizeof(cap), e);
    if (off < 0)
        return off;
    m->cap = (unsigned)off;
    m->nvec = nvec;
    m->bar = bar;
    m->table_off = table_off;
    m->pba_off = pba_off;
    /* Enable and Function Mask: bits 15 and 14 of message control */
    d->wmask[m->cap + PCI_MSIX_FLAGS + 1] =
        (uint8_t)((PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8);
    for (unsigned v = 0; v < nvec; v++) {
        m->table[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
        m->vec[v].route = -1;
    }
    return 0;
}

void pci_msix_cfg_write(struct pci_msix *m, unsigned off, unsigned size)
{
    unsigned f = m->cap + PCI_MSIX_FLAGS;
    if (!m->nvec || off >= f + 2 || off + size <= f)
        return;
    if (pci_msix_enabled(m))
        pci_set_intx(m->dev, false);
    unmasked(m);
}

/* writable bits of an entry's 16 bytes */
static const uint8_t entry_wmask[PCI_MSIX_ENTRY_SIZE] = {
    0xfc, 0xff, 0xff, 0xff,     /* address low: dword aligned */
    0xff, 0xff, 0xff, 0xff,     /* address high */
    0xff, 0xff, 0xff, 0xff,     /* data */
    PCI_MSIX_ENTRY_CTRL_MASKBIT, 0, 0, 0,
};

static bool aligned(uint64_t off, unsigned size)
{
    return (size == 1 || size == 2 || size == 4 || size == 8) && !(off & (size - 1));
}

uint64_t pci_msix_read(struct pci_msix *m, uint64_t off, unsigned size)
{
    uint64_t v = 0;
    if (!aligned(off, size))
        return 0;
    if (off >= m->table_off && off - m->table_off < (uint64_t)m->nvec * PCI_MSIX_ENTRY_SIZE) {
        uint64_t t = off - m->table_off;
        for (unsigned i = 0; i < size; i++)
            v |= (uint64_t)m->table[t + i] << (8 * i);
    } else if (off >= m->pba_off && off - m->pba_off < 8) {
        unsigned p = (unsigned)(off - m->pba_off);
        v = m->pending >> (8 * p);
        if (size < 8)
            v &= (1ull << (8 * size)) - 1;
    }
    return v;
}

void pci_msix_write(struct pci_msix *m, uint64_t off, uint64_t val, unsigned size)
{
    if (!aligned(off, size) || off < m->table_off ||
        off - m->table_off >= (uint64_t)m->nvec * PCI_MSIX_ENTRY_SIZE)
        return;     /* the PBA and the rest are read-only */
    uint64_t t = off - m->table_off;
    unsigned v = (unsigned)(t / PCI_MSIX_ENTRY_SIZE);
    bool was = deliverable(m, v);
    for (unsigned i = 0; i < size; i++) {
        uint8_t mask = entry_wmask[(t + i) % PCI_MSIX_ENTRY_SIZE], b = (uint8_t)(val >> (8 * i));
        m->table[t + i] = (uint8_t)((m->table[t + i] & ~mask) | (b & mask));
    }
    if (!was && deliverable(m, v))
        unmasked(m);
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    return pci_msix_read(opaque, off, size);
}

static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    pci_msix_write(opaque, off, val, size);
}

const struct mmio_ops pci_msix_bar_ops = { .read = bar_read, .write = bar_write };

/* --- snapshots ------------------------------------------------------------ */

void pci_msix_save(const struct pci_msix *m, struct snap_writer *w)
{
    snapw_u32(w, m->nvec);
    snapw_u64(w, m->pending);
    snapw_bytes(w, m->table, (size_t)m->nvec * PCI_MSIX_ENTRY_SIZE);
}

void pci_msix_load(const struct pci_msix *m, struct snap_reader *r, struct pci_msix_snap *s)
{
    memset(s, 0, sizeof(*s));
    s->nvec = snapr_u32(r);
    s->pending = snapr_u64(r);
    if (!snapr_check(r, r->fail || s->nvec == m->nvec, "MSI-X: another number of vectors"))
        return;     /* the table's length is unknown: stop here */
    snapr_bytes(r, s->table, (size_t)m->nvec * PCI_MSIX_ENTRY_SIZE);
    if (m->nvec < 64)
        snapr_check(r, !(s->pending >> m->nvec), "MSI-X: pending bits for missing vectors");
    for (unsigned i = 0; i < m->nvec * PCI_MSIX_ENTRY_SIZE; i++)
        if (!snapr_check(r, !(s->table[i] & ~entry_wmask[i % PCI_MSIX_ENTRY_SIZE]),
                         "MSI-X: reserved bits set in a table entry"))
            break;
}

void pci_msix_restore(struct pci_msix *m, const struct pci_msix_snap *s)
{
    memcpy(m->table, s->table, (size_t)m->nvec * PCI_MSIX_ENTRY_SIZE);
    m->pending = s->pending;
    for (unsigned v = 0; v < m->nvec; v++)
        m->vec[v].synced = false;   /* a route this device has is reprogrammed on use */
}
