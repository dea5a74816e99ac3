/* seccomp filters per thread kind (docs/seccomp.md).
 *
 * Design
 * - sandbox_seccomp_init (petrel run, before any thread of the VM starts)
 *   compiles one BPF allowlist per thread kind with libseccomp
 *   (seccomp_policy.c), sets no_new_privs, installs the SIGSYS handler and
 *   the name table it prints from, and sets core's thread hook
 *   (core/thread.h) so each thread loads its own filter once its set-up is
 *   done.  Loading is a single seccomp(2) call: no allocation, no lock.
 * - The main thread loads the "vmm" filter itself (sandbox_seccomp_enter)
 *   when every set-up step is done.  Threads created later inherit it and
 *   add their own on top (the kernel runs both: the stricter wins), so the
 *   vmm filter allows what a new thread does before its thread_ready call.
 * - A forbidden system call: mode on traps (SIGSYS): the handler writes
 *   "petrel: seccomp: <kind> thread made forbidden system call <name> (<nr>)"
 *   and ends the process with status SANDBOX_SECCOMP_EXIT; mode log lets it
 *   through and the kernel logs it (audit log, dmesg); mode off installs no
 *   filter.
 *
 * What can fail: init (libseccomp errors, a kernel without seccomp filters
 * or without the log action), reported through struct err.  A thread whose
 * filter does not load ends the process with a message rather than run
 * unfiltered. */
#ifndef PETREL_SANDBOX_SECCOMP_H
#define PETREL_SANDBOX_SECCOMP_H

#include <seccomp.h>

#include "core/log.h"
#include "core/thread.h"

enum sandbox_seccomp_mode { SBX_SECCOMP_ON, SBX_SECCOMP_OFF, SBX_SECCOMP_LOG };

/* The exit status after a forbidden system call: 128 + SIGSYS, what a shell
 * reports for a process killed by SIGSYS (without the core dump). */
#define SANDBOX_SECCOMP_EXIT 159

/* "on", "off" or "log"; -EINVAL for anything else. */
int sandbox_seccomp_parse(const char *s, enum sandbox_seccomp_mode *out);
const char *sandbox_seccomp_mode_name(enum sandbox_seccomp_mode m);
/* Compile the filters and arm the thread hook (nothing for off). */
int sandbox_seccomp_init(enum sandbox_seccomp_mode m, struct err *e);
/* Load the filter of kind on the calling thread (no-op when off or not
 * initialised). */
void sandbox_seccomp_enter(enum thread_kind kind);

/* seccomp_policy.c: add kind's allowlist to a libseccomp context. */
int sandbox_seccomp_policy(scmp_filter_ctx ctx, enum thread_kind kind, struct err *e);

#endif
