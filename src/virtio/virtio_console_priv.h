/* virtio-console's private header: what virtio_console.c (the device,
 * its rings and the client socket) and virtio_console_setup.c (options,
 * the socket or file backend's set-up, teardown) share.  The design is in
 * virtio_console.c. */
#ifndef PETREL_VIRTIO_CONSOLE_PRIV_H
#define PETREL_VIRTIO_CONSOLE_PRIV_H

#include <limits.h>
#include <sys/types.h>

#include "core/usock.h"
#include "virtio/virtio_pci.h"

#define CON_QUEUE_SIZE 128
#define CON_RXQ 0
#define CON_TXQ 1
#define CON_CTRL_RXQ 2
#define CON_CTRL_TXQ 3
#define CON_NQUEUES 4
#define CON_CTRL_PENDING 8
#define CON_CFG_SIZE 12
#define CON_CFG_EMERG_WR 8
#define CON_RX_BUF 16384u
#define CON_OUT_BUF 65536u
#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

/* control events (spec 5.3.6.2) */
enum {
    CTRL_DEVICE_READY = 0,
    CTRL_PORT_ADD = 1,
    CTRL_PORT_REMOVE = 2,
    CTRL_PORT_READY = 3,
    CTRL_CONSOLE_PORT = 4,
    CTRL_RESIZE = 5,
    CTRL_PORT_OPEN = 6,
    CTRL_PORT_NAME = 7,
};
#define CTRL_MSG_SIZE 8         /* le32 id, le16 event, le16 value */

struct ctrl_msg {
    uint32_t id;
    uint16_t event, value;
};

#define PCI_CLASS_COMMUNICATION_OTHER 0x078000

/* tags of the private epoll set's members */
enum { TAG_LISTEN = 1, TAG_CLIENT = 2 };

/* A byte ring of fixed capacity. */
struct ring {
    uint8_t *buf;
    size_t cap, head, len;
};

struct virtio_console {
    struct virtio_pci vp;
    struct evloop *loop;
    /* socket backend */
    char path[PATH_MAX];        /* the socket's or the file's, for messages */
    struct usock_id sock_id;    /* path is ours to unlink while it is this socket */
    int epfd, lfd, cfd;
    bool lfd_watched;
    bool accept_error_logged;   /* e.g. out of descriptors: said once */
    bool cfd_watched;
    uint32_t cfd_events;        /* interest currently registered for cfd */
    bool in_eof;                /* the client sends nothing more */
    bool out_dead;              /* the client takes nothing more */
    struct ring rx, out;
    /* the guest's port (MULTIPORT control protocol) */
    bool port_open;             /* the driver sent PORT_OPEN(0, 1) */
    struct ctrl_msg ctrl[CON_CTRL_PENDING];   /* for the driver, in order */
    unsigned ctrl_head, ctrl_len;
    /* file backend */
    int file_fd;
    bool file_error_logged;
    /* statistics */
    uint64_t dropped, dropped_logged;
    struct virtq_chain chain;
};

/* virtio_console.c */
extern const struct virtio_dev_ops virtio_console_ops;
void con_event(void *opaque);           /* evloop handler of the private epoll set */
void con_flush(struct virtio_console *c);
void con_discard_output(struct virtio_console *c);
void con_log_dropped(struct virtio_console *c, const char *when);

#endif
