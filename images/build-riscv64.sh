#!/usr/bin/env bash
# Build Petrel's default riscv64 guest from Debian packages only.
#
#   images/build-riscv64.sh [OUTDIR]        (default: build/guest/riscv64)
#
# Outputs, in OUTDIR:
#   Image              the kernel: /boot/vmlinux-* of Debian trixie's
#                      linux-image-riscv64 dependency, a flat RISC-V Image
#                      (with a PE/EFI header), kept as is
#   fw_dynamic.bin     OpenSBI generic fw_dynamic from trixie's opensbi package
#   initramfs.cpio.gz  gzip'd newc cpio: static busybox + /init (see
#                      initramfs_stage in images/lib-apt.sh), and the
#                      kernel's virtio modules, loaded by /init (see
#                      initramfs_modules)
#   VERSIONS           the Debian packages and versions used
#
# Packages come from trixie (riscv64 is an official port there) through apt
# with a private configuration under build/apt-riscv64, so the host's apt
# state is never touched.  Cached: if every output exists and is newer than
# this script and images/lib-apt.sh, nothing is done (PETREL_GUEST_REBUILD=1
# forces a rebuild).
# Environment: PETREL_APT_DIR (apt state/cache, default build/apt-riscv64),
# PETREL_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# PETREL_DEBIAN_SUITE (default trixie).
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
root=$(dirname "$(dirname "$script")")
tag=build-riscv64
# shellcheck source=images/lib-apt.sh
. "$root/images/lib-apt.sh"

outdir=${1:-$root/build/guest/riscv64}
mkdir -p "$outdir"
outdir=$(readlink -f "$outdir")
outputs=(Image fw_dynamic.bin initramfs.cpio.gz VERSIONS)

if guest_fresh "$script" "$outdir" "${outputs[@]}"; then
    log "up to date: $outdir"
    exit 0
fi
guest_check_tools

apt_setup "${PETREL_APT_DIR:-$root/build/apt-riscv64}" riscv64 \
    "${PETREL_DEBIAN_MIRROR:-http://deb.debian.org/debian}" "${PETREL_DEBIAN_SUITE:-trixie}"
apt_update

kpkg=$(apt_real_dep linux-image-riscv64 '^linux-image-[0-9].*-riscv64$')
pkgs=("$kpkg" busybox-static opensbi)
log "packages: ${pkgs[*]}"
apt_fetch "${pkgs[@]}"

ext="$apt_dir/extract"
apt_extract "$ext" "${pkgs[@]}"
kroot="$ext/$kpkg"
bbroot="$ext/busybox-static"
sbiroot="$ext/opensbi"

kernel=$(boot_kernel "$kroot" 'vmlinux-*')
# A RISC-V Image starts with "RISCV\0\0\0" at offset 48 and "RSC\x05" at 56.
[ "$(dd if="$kernel" bs=1 skip=48 count=5 status=none)" = RISCV ] ||
    die "$kernel is not a RISC-V Image"
fw="$sbiroot/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"
[ -f "$fw" ] || die "no fw_dynamic.bin in opensbi"
busybox=$(busybox_binary "$bbroot")

stage="$apt_dir/initramfs"
initramfs_stage "$stage" "$busybox" riscv64 build-riscv64.sh
# Not ext4 (guest_modules_ext4), a module in this kernel: with it the
# initramfs grows by 1.1 MB, the boot by 1.3 s, and the guest needs about
# 20 MB more RAM (at --memory 96M loading ext4 runs out of memory).
initramfs_modules "$stage" "$kroot" "${guest_modules_virtio[@]}"

tmp=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
initramfs_pack "$stage" "$tmp/initramfs.cpio.gz"
cp "$kernel" "$tmp/Image"
cp "$fw" "$tmp/fw_dynamic.bin"
versions_file "$tmp/VERSIONS" riscv64 build-riscv64.sh "$kernel"

# Install: VERSIONS last, so an interrupted build is never taken as fresh.
for f in Image fw_dynamic.bin initramfs.cpio.gz VERSIONS; do
    mv -f "$tmp/$f" "$outdir/$f"
done
rm -rf "$ext"       # ~150 MB of extracted packages; the .debs stay cached
log "built $outdir:"
sed 's/^/  /' "$outdir/VERSIONS" >&2
