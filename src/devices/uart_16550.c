#include "devices/uart_16550.h"

#include <string.h>

enum {
    REG_RBR_THR = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3,
    REG_MCR = 4, REG_LSR = 5, REG_MSR = 6, REG_SCR = 7,
};
#define IER_ERBFI 0x01
#define IER_ETBEI 0x02
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define MCR_LOOP 0x10

static bool rx_ready(const struct uart16550 *u)
{
    return u->rx_enabled && console_has_input(u->con);
}

void uart16550_update(struct uart16550 *u)
{
    int level = ((u->ier & IER_ERBFI) && rx_ready(u)) ||
                ((u->ier & IER_ETBEI) && u->thr_ipending);
    if (level != u->irq_level) {
        u->irq_level = level;
        if (u->set_irq)
            u->set_irq(u->irq_opaque, level);
    }
}

void uart16550_init(struct uart16550 *u, struct console *con,
                    void (*set_irq)(void *opaque, int level), void *irq_opaque)
{
    memset(u, 0, sizeof(*u));
    u->con = con;
    u->set_irq = set_irq;
    u->irq_opaque = irq_opaque;
    u->lcr = 0x03;
}

static uint8_t iir(struct uart16550 *u)
{
    uint8_t fifo = (u->fcr & 1) ? 0xc0 : 0;
    if ((u->ier & IER_ERBFI) && rx_ready(u))
        return IIR_RDI | fifo;
    if ((u->ier & IER_ETBEI) && u->thr_ipending) {
        u->thr_ipending = false; /* reading IIR acknowledges THRE */
        return IIR_THRI | fifo;
    }
    return IIR_NONE | fifo;
}

static uint64_t uart_read(void *opaque, uint64_t off, unsigned size)
{
    (void)size;
    struct uart16550 *u = opaque;
    uint8_t v = 0;
    switch (off) {
    case REG_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
        } else if (rx_ready(u)) {
            v = (uint8_t)console_getc(u->con);
        }
        break;
    case REG_IER:
        v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case REG_IIR_FCR:
        v = iir(u);
        break;
    case REG_LCR:
        v = u->lcr;
        break;
    case REG_MCR:
        v = u->mcr;
        break;
    case REG_LSR:
        v = LSR_THRE | LSR_TEMT | (rx_ready(u) ? LSR_DR : 0);
        break;
    case REG_MSR:
        if (u->mcr & MCR_LOOP) /* loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
            v = (uint8_t)(((u->mcr & 1) << 5) | ((u->mcr & 2) << 3) |
                          ((u->mcr & 4) << 4) | ((u->mcr & 8) << 4));
        else
            v = 0xb0; /* DCD, DSR, CTS asserted */
        break;
    case REG_SCR:
        v = u->scr;
        break;
    default:
        break;
    }
    uart16550_update(u);
    return v;
}

static void uart_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)size;
    struct uart16550 *u = opaque;
    uint8_t v = (uint8_t)val;
    switch (off) {
    case REG_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            u->dll = v;
        } else {
            if (!(u->mcr & MCR_LOOP))
                console_putc(u->con, v);
            u->thr_ipending = true; /* transmitted at once: THR empty again */
        }
        break;
    case REG_IER:
        if (u->lcr & LCR_DLAB) {
            u->dlm = v;
        } else {
            if ((v & IER_ETBEI) && !(u->ier & IER_ETBEI))
                u->thr_ipending = true;
            if (v & IER_ERBFI)
                u->rx_enabled = true;
            u->ier = v & 0x0f;
        }
        break;
    case REG_IIR_FCR:
        u->fcr = v & 0xc9; /* FIFO resets are self-clearing; input is kept */
        break;
    case REG_LCR:
        u->lcr = v;
        break;
    case REG_MCR:
        u->mcr = v & 0x1f;
        break;
    case REG_SCR:
        u->scr = v;
        break;
    default:
        break;
    }
    uart16550_update(u);
}

const struct mmio_ops uart16550_ops = { .read = uart_read, .write = uart_write };
