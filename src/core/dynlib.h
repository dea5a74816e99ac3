/* Libraries loaded on first use with dlopen, not linked: libmicrohttpd
 * (the VMM's API, petrel serve), libvncserver (--vnc), GnuTLS (serve's
 * WebSocket handshake).  Linking them would make every petrel command, and
 * every VMM start, pay for their relocations and constructors.
 *
 * A caller describes the functions it needs as a table of names and
 * offsets into its own struct of function pointers; dynlib_load fills the
 * struct or fails without touching it, naming the library, what it is for
 * and the Debian package to install. */
#ifndef PETREL_DYNLIB_H
#define PETREL_DYNLIB_H

#include <stddef.h>

#include "core/log.h"

struct dynlib_sym {
    const char *name;
    size_t off;             /* of the function pointer in the caller's struct */
};

struct dynlib {
    const char *soname;     /* e.g. "libmicrohttpd.so.12" */
    const char *what;       /* what it is for, e.g. "the API's HTTP server" */
    const char *package;    /* the Debian package that has it */
    const struct dynlib_sym *syms;
    unsigned nsyms;
    void *handle;           /* set once loaded */
};

/* Load l (once: later calls return 0 at once) and store each symbol's
 * address at (char *)table + syms[i].off.  0, or -ELIBACC with a message. */
int dynlib_load(struct dynlib *l, void *table, struct err *e);

#endif
