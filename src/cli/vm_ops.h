/* `petrel vm`'s operations for other parts of petrel (`petrel serve`): the
 * same code as the commands, returning a result or a struct err instead of
 * printing.
 *
 * Design
 * - The commands' cores print their messages through vmx_printf and
 *   vmx_eprintf (vm_common.c).  On a thread that began a capture
 *   (vmx_capture_begin) those go into the capture instead of stdout and
 *   stderr, so the CLI's messages are unchanged and a server gets them as
 *   data: the first line written for stderr becomes the struct err.
 * - vm_ops_cmd runs one `petrel vm` command (argv as on the command line,
 *   argv[0] the command's name: {"start", "web1"}): the flags are parsed
 *   and checked by the command itself, so the server accepts exactly what
 *   the CLI accepts.
 *
 * Threads: any; vm_ops_cmd serialises the commands of one process (their
 * option parsing uses getopt's globals), the list and info functions run
 * concurrently.  vm_ops_init must run first, before any thread starts.
 *
 * What can fail: 1 and a one-line message in e (the CLI's message without
 * its "petrel vm: " prefix). */
#ifndef PETREL_CLI_VM_OPS_H
#define PETREL_CLI_VM_OPS_H

#include <limits.h>
#include <stddef.h>

#include <jansson.h>

#include "core/log.h"

#define VMX_CAPTURE_MAX (64 * 1024)     /* stdout text kept by a capture */

struct vmx_capture {
    char *out, *err;                    /* NUL-terminated; NULL: nothing written */
    size_t out_len, out_cap, err_len, err_cap;
};
void vmx_capture_begin(struct vmx_capture *c);
/* Stop capturing; e: the first stderr line (empty if none). */
void vmx_capture_end(struct vmx_capture *c, struct err *e);
void vmx_capture_free(struct vmx_capture *c);

/* The state directory (created when missing) and libcurl for the VMMs'
 * APIs: 0, or 1 and why. */
int vm_ops_init(char *state_dir, size_t len, struct err *e);
/* `petrel vm list --json`'s array (*out, a new reference). */
int vm_ops_list(json_t **out, struct err *e);
/* `petrel vm info NAME`'s object. */
int vm_ops_info(const char *name, json_t **out, struct err *e);
/* Run `petrel vm ARGV...`; *out (if out): what it printed on stdout
 * (malloc'd, or NULL). */
int vm_ops_cmd(int argc, char **argv, char **out, struct err *e);
/* Whether NAME is a valid VM name that exists. */
int vm_ops_exists(const char *name, struct err *e);
/* The sockets of NAME's running (or paused) VMM: 0, or 1 (not running). */
int vm_ops_sockets(const char *name, char *api, char *con, size_t len, struct err *e);
/* The VNC socket of NAME's running (or paused) VMM (it exists only when
 * the VM has a display: vm.json "display"): 0, or 1 (not running). */
int vm_ops_vnc_socket(const char *name, char *vnc, size_t len, struct err *e);

/* Reap the VMMs this process started that have exited (they are its
 * children: `start` waits only for their API); does nothing while a
 * command runs (a start waits for its own VMM's exit status). */
void vm_ops_reap(void);

#endif
