#include "devices/uart_16550.h"

#include <errno.h>
#include <string.h>

#include "core/snapshot.h"

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

/* Snapshot section (name given by the board), version 1: the registers,
 * the interrupt state, and the input the host sent that the guest has not
 * read yet (the console's input ring plays the receive FIFO: the guest may
 * already have been interrupted for it). */
#define UART_SNAP_MAX_INPUT CONSOLE_INBUF

void uart16550_save(const struct uart16550 *u, const char *name, struct snap_writer *w)
{
    snapw_section(w, name, 1);
    const uint8_t regs[] = { u->ier, u->lcr, u->mcr, u->scr, u->dll, u->dlm, u->fcr };
    snapw_bytes(w, regs, sizeof(regs));
    snapw_bool(w, u->thr_ipending);
    snapw_bool(w, u->rx_enabled);
    snapw_bool(w, u->irq_level != 0);
    uint8_t in[UART_SNAP_MAX_INPUT];
    size_t n = u->con ? console_peek_input(u->con, in, sizeof(in)) : 0;
    snapw_u32(w, (uint32_t)n);
    snapw_bytes(w, in, n);
}

int uart16550_load(struct uart16550 *u, const char *name, struct snap_file *f, struct err *e)
{
    struct snap_reader r;
    int ret = snap_section(f, name, 1, 1, &r, e);
    if (ret < 0)
        return ret;
    uint8_t regs[7];
    snapr_bytes(&r, regs, sizeof(regs));
    bool thr = snapr_bool(&r), rx = snapr_bool(&r);
    (void)snapr_bool(&r);   /* the line's level: recomputed below */
    uint32_t n = snapr_u32(&r);
    uint8_t in[UART_SNAP_MAX_INPUT];
    if (snapr_check(&r, n <= sizeof(in), "too much pending input"))
        snapr_bytes(&r, in, n);
    snapr_check(&r, (regs[0] & 0xf0) == 0, "bad IER");
    if ((ret = snapr_end(&r, e)) < 0)
        return ret;
    if (n && u->con && console_input_room(u->con) < n)
        return err_set(e, -ENOSPC, "state file: '%s': console input does not fit", name);
    u->ier = regs[0];
    u->lcr = regs[1];
    u->mcr = regs[2];
    u->scr = regs[3];
    u->dll = regs[4];
    u->dlm = regs[5];
    u->fcr = regs[6];
    u->thr_ipending = thr;
    u->rx_enabled = rx;
    if (n && u->con)
        console_input(u->con, in, n);
    /* drive the line as these registers make it, whatever it was */
    u->irq_level = -1;
    uart16550_update(u);
    return 0;
}
