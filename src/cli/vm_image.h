/* Base images: the files VMs' root disks are overlays on, kept in the state
 * directory's images/ where nothing rewrites them.
 *
 * Design
 * - A qcow2 overlay reads every cluster it has not written from its backing
 *   file, so a backing file that changes (the default guest's root.img is
 *   rebuilt by `make guest`) silently corrupts every VM on it.  `petrel vm
 *   create` therefore imports a base into images/ once and names the copy
 *   in the overlay: images/<arch>-<the first 16 hex digits of the content's
 *   SHA-256>.<raw|qcow2>, mode 0444.  Identical content is stored once and
 *   shared by every VM made from it; new content (a rebuilt root.img) is a
 *   new image, and the VMs made before keep the old one.
 * - The copy is sparse: holes (SEEK_DATA/SEEK_HOLE) and all-zero 4 KiB
 *   blocks are not written.  It goes to a temporary file in images/
 *   (.import.XXXXXX), is fsynced, made 0444 and renamed into place without
 *   replacing an existing image, so an image is whole or absent.  The
 *   source must not change while it is copied (its size, mtime and ctime
 *   are compared before and after).
 * - Reading a large base at every create would be slow, so
 *   images/sources/<key>.json remembers, per source path and arch, the
 *   source's identity (device, inode, size, mtime and ctime in ns) and the
 *   image it gave.  A source that still matches, with its image present, is
 *   not read again; any rewrite of the source changes its identity.  The
 *   record is a cache: a missing or malformed one means "import again".
 * - Petrel never deletes an image (deleting a VM leaves it).
 *
 * Threads: none.  Concurrent imports (two creates) are safe: each writes
 * its own temporary file; the second rename finds the image there and
 * drops its copy.
 *
 * What can fail: the source (unreadable, not a raw or qcow2 image, a qcow2
 * with a backing file of its own: flatten it first, changed while being
 * copied), images/ (no space, I/O errors); a one-line message in struct
 * err. */
#ifndef PETREL_CLI_VM_IMAGE_H
#define PETREL_CLI_VM_IMAGE_H

#include <stdbool.h>

#include "core/log.h"

#define VM_IMAGE_DIR "images"
#define VM_IMAGE_HASH_HEX 16            /* hex digits of the SHA-256 in a name */

/* Import src (an absolute path to a raw or qcow2 image) for arch into
 * images_dir (created 0700 when missing).  *out: the image's absolute path
 * (malloc'ed).  *imported: whether this call copied data (false when the
 * record or an identical image made it unnecessary). */
int vm_image_import(const char *images_dir, const char *arch, const char *src, char **out,
                    bool *imported, struct err *e);

#endif
