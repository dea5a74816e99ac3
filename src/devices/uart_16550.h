/* NS16550A UART on MMIO (byte registers, reg-shift 0).
 *
 * Transmit is instantaneous (bytes go to the console's output buffer).
 * Receive drains the console's input ring, which plays the role of an
 * unbounded FIFO.  Input is withheld (LSR.DR reads 0) until the guest first
 * enables the receive interrupt: Linux's 8250 start-up reads RBR blindly,
 * which would otherwise eat the first byte of input piped in before boot.
 * An RX FIFO reset (FCR bit 1) likewise does not discard buffered input. */
#ifndef PETREL_UART_16550_H
#define PETREL_UART_16550_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/console.h"

struct uart16550 {
    struct console *con;
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    bool thr_ipending;
    bool rx_enabled;     /* latched when the guest first sets IER.ERBFI */
    int irq_level;
    void (*set_irq)(void *opaque, int level);
    void *irq_opaque;
};

extern const struct mmio_ops uart16550_ops;

void uart16550_init(struct uart16550 *u, struct console *con,
                    void (*set_irq)(void *opaque, int level), void *irq_opaque);
/* Re-evaluate the interrupt line (call after console input arrived). */
void uart16550_update(struct uart16550 *u);

/* Snapshots (core/snapshot.h): one section named `name`. */
struct snap_writer;
struct snap_file;
void uart16550_save(const struct uart16550 *u, const char *name, struct snap_writer *w);
int uart16550_load(struct uart16550 *u, const char *name, struct snap_file *f, struct err *e);

#endif
