/* reset_kbd / reset_triple: the two ways a PC guest resets itself.
 * - reset_kbd: pulse the reset line through the i8042 (0xfe to port 0x64,
 *   after waiting for its input buffer to drain);
 * - reset_triple: load an empty IDT and execute ud2: #UD can't be
 *   delivered, nor the #DF, so the CPU shuts down (triple fault).
 * Expected: Petrel ends the run with exit status 2 (reboot); QEMU with
 * -no-reboot exits with status 0.  If the machine is still running 2 s
 * later the program prints FAIL and exits through the debug port. */
#include "rt.h"

void test_main(void) {
    tsc_calibrate();
#ifdef RESET_KBD
    for (int i = 0; i < 100000 && (inb(0x64) & 0x02); i++) pause();
    printf("%s: writing 0xfe to port 0x64, expecting a reset\n", TEST_NAME);
#ifndef TEST_BREAK
    outb(0x64, 0xfe);
#endif
#else
    printf("%s: empty IDT + ud2, expecting a triple fault\n", TEST_NAME);
#ifndef TEST_BREAK
    idt_load_empty();
#endif
    __asm__ volatile("ud2");
#endif
    udelay(2000000);
    fail("still running 2 s after asking for a reset");
}
