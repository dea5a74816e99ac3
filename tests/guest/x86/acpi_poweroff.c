/* acpi_poweroff (Petrel only: QEMU's machines have other ACPI hardware):
 * power off the way Linux does on a hardware-reduced ACPI platform.  Find
 * the RSDP in 0xe0000..0xfffff, follow the XSDT to the FADT, check the
 * DSDT holds Name(_S5, Package(){5, ...}), then write SLP_TYP=5 | SLP_EN to
 * the FADT's SLEEP_CONTROL_REG.  Expected: the VM powers off (exit status
 * 0) without this program ever writing the debug-exit port; if it is still
 * running 2 s later it prints FAIL and fails. */
#include "rt.h"

#include <string.h>

static int sum_ok(const uint8_t *p, uint32_t len)
{
    uint8_t s = 0;
    for (uint32_t i = 0; i < len; i++)
        s += p[i];
    return s == 0;
}

void test_main(void) {
    tsc_calibrate();
    const uint8_t *rsdp = 0;
    for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
        if (!memcmp(phys(a), "RSD PTR ", 8)) {
            rsdp = phys(a);
            break;
        }
    if (!rsdp)
        fail("no RSDP in 0xe0000..0xfffff");
    if (!sum_ok(rsdp, 20) || rsdp[15] < 2)
        fail("bad RSDP");
    uint64_t xsdt_pa;
    memcpy(&xsdt_pa, rsdp + 24, 8);
    const uint8_t *xsdt = phys(xsdt_pa);
    uint32_t xlen;
    memcpy(&xlen, xsdt + 4, 4);
    if (memcmp(xsdt, "XSDT", 4) || !sum_ok(xsdt, xlen))
        fail("bad XSDT");
    const uint8_t *fadt = 0;
    for (uint32_t off = 36; off + 8 <= xlen; off += 8) {
        uint64_t pa;
        memcpy(&pa, xsdt + off, 8);
        if (!memcmp(phys(pa), "FACP", 4))
            fadt = phys(pa);
    }
    if (!fadt)
        fail("no FADT in the XSDT");
    uint32_t flen, flags;
    memcpy(&flen, fadt + 4, 4);
    memcpy(&flags, fadt + 112, 4);
    if (!sum_ok(fadt, flen) || flen < 256)
        fail("bad FADT");
    if (!(flags & (1u << 20)))
        fail("FADT: not hardware-reduced, no sleep control register");
    uint64_t dsdt_pa;
    memcpy(&dsdt_pa, fadt + 140, 8);            /* X_DSDT */
    const uint8_t *dsdt = phys(dsdt_pa);
    uint32_t dlen;
    memcpy(&dlen, dsdt + 4, 4);
    int s5 = -1;
    for (uint32_t i = 36; i + 10 <= dlen; i++)  /* Name(_S5_, Package(){ BytePrefix n ... }) */
        if (dsdt[i] == 0x08 && !memcmp(dsdt + i + 1, "_S5_", 4) && dsdt[i + 5] == 0x12 &&
            dsdt[i + 8] == 0x0a)
            s5 = dsdt[i + 9];
    if (s5 != 5)
        fail("DSDT: no _S5 package with SLP_TYP 5");
    const uint8_t *gas = fadt + 244;            /* SLEEP_CONTROL_REG */
    uint64_t port;
    memcpy(&port, gas + 4, 8);
    if (gas[0] != 1 || gas[1] != 8 || port > 0xffff)
        fail("FADT: sleep control register is not an 8-bit I/O port");
    printf("%s: writing 0x%x to port 0x%x, expecting the VM to power off\n", TEST_NAME,
           (unsigned)((s5 << 2) | 0x20), (unsigned)port);
#ifndef TEST_BREAK
    outb((uint16_t)port, (uint8_t)((s5 << 2) | 0x20));
#endif
    udelay(2000000);
    fail("still running 2 s after the ACPI S5 write");
}
