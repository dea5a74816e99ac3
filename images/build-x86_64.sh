#!/usr/bin/env bash
# Build Petrel's default x86-64 guest from Debian packages only.
#
#   images/build-x86_64.sh [OUTDIR]         (default: build/guest/x86_64)
#
# Outputs, in OUTDIR:
#   vmlinuz            the kernel: /boot/vmlinuz-* of Debian bookworm's
#                      linux-image-cloud-amd64 dependency, a bzImage (boot
#                      protocol 2.12+, 64-bit entry), kept as is
#   initramfs.cpio.gz  gzip'd newc cpio: static busybox + /init (see
#                      initramfs_stage in images/lib-apt.sh), and the
#                      kernel's virtio and ext4 modules (those that are
#                      modules), loaded by /init (see initramfs_modules)
#   VERSIONS           the Debian packages and versions used
#
# Packages come from bookworm (amd64) through apt with a private
# configuration under build/apt-x86_64, so the host's apt state is never
# touched.  Cached: if every output exists and is newer than this script and
# images/lib-apt.sh, nothing is done (PETREL_GUEST_REBUILD=1 forces a
# rebuild).
# Environment: PETREL_APT_DIR_X86 (apt state/cache, default build/apt-x86_64),
# PETREL_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# PETREL_DEBIAN_SUITE_X86 (default bookworm).
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
root=$(dirname "$(dirname "$script")")
tag=build-x86_64
# shellcheck source=images/lib-apt.sh
. "$root/images/lib-apt.sh"

outdir=${1:-$root/build/guest/x86_64}
mkdir -p "$outdir"
outdir=$(readlink -f "$outdir")
outputs=(vmlinuz initramfs.cpio.gz VERSIONS)

if guest_fresh "$script" "$outdir" "${outputs[@]}"; then
    log "up to date: $outdir"
    exit 0
fi
guest_check_tools

apt_setup "${PETREL_APT_DIR_X86:-$root/build/apt-x86_64}" amd64 \
    "${PETREL_DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
    "${PETREL_DEBIAN_SUITE_X86:-bookworm}"
apt_update

kpkg=$(apt_real_dep linux-image-cloud-amd64 '^linux-image-[0-9].*-cloud-amd64$')
pkgs=("$kpkg" busybox-static)
log "packages: ${pkgs[*]}"
apt_fetch "${pkgs[@]}"

ext="$apt_dir/extract"
apt_extract "$ext" "${pkgs[@]}"
kroot="$ext/$kpkg"
bbroot="$ext/busybox-static"

kernel=$(boot_kernel "$kroot" 'vmlinuz-*')
# A bzImage has "HdrS" at offset 0x202 (boot protocol setup header).
[ "$(dd if="$kernel" bs=1 skip=514 count=4 status=none)" = HdrS ] ||
    die "$kernel is not a bzImage"
busybox=$(busybox_binary "$bbroot")

stage="$apt_dir/initramfs"
initramfs_stage "$stage" "$busybox" x86_64 build-x86_64.sh
initramfs_modules "$stage" "$kroot" "${guest_modules_virtio[@]}" "${guest_modules_ext4[@]}"

tmp=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
initramfs_pack "$stage" "$tmp/initramfs.cpio.gz"
cp "$kernel" "$tmp/vmlinuz"
versions_file "$tmp/VERSIONS" x86_64 build-x86_64.sh "$kernel"

# Install: VERSIONS last, so an interrupted build is never taken as fresh.
for f in vmlinuz initramfs.cpio.gz VERSIONS; do
    mv -f "$tmp/$f" "$outdir/$f"
done
rm -rf "$ext"       # the extracted packages; the .debs stay cached
log "built $outdir:"
sed 's/^/  /' "$outdir/VERSIONS" >&2
