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
#                      kernel's virtio and input (virtio_input, evdev)
#                      modules, loaded by /init (see initramfs_modules), and
#                      ext4's, loaded only to mount a root disk
#                      (root=/dev/vda), and virtio-gpu's with DRM, loaded
#                      only when a virtio-gpu is present
#   root.img           the root disk: a sparse ext4 image (64 MiB,
#                      PETREL_ROOT_DISK_SIZE) with busybox, the virtio,
#                      input and ext4 modules, busybox init, and dropbear
#                      (trixie's dropbear-bin, with the libraries it needs
#                      from the packages it depends on) for ssh (see
#                      images/lib-rootfs.sh).  Boot it with
#                        petrel run --disk COPY-OF-root.img \
#                          --append "root=/dev/vda console=ttyS0 earlycon=sbi"
#                      (the guest writes to it: `make run-disk` boots a copy)
#   VERSIONS           the Debian packages and versions used
#
# Packages come from trixie (riscv64 is an official port there) through apt
# with a private configuration under build/apt-riscv64, so the host's apt
# state is never touched.  Cached: if every output exists and is newer than
# this script and images/lib-*.sh, nothing is done (PETREL_GUEST_REBUILD=1
# forces a rebuild).  Two builds from the same packages (and the same
# e2fsprogs) are byte-identical; SOURCE_DATE_EPOCH sets the file times.
# Environment: PETREL_APT_DIR (apt state/cache, default build/apt-riscv64),
# PETREL_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# PETREL_DEBIAN_SUITE (default trixie), PETREL_ROOT_DISK_SIZE (default 64M).
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
root=$(dirname "$(dirname "$script")")
tag=build-riscv64
# shellcheck source=images/lib-apt.sh
. "$root/images/lib-apt.sh"
# shellcheck source=images/lib-rootfs.sh
. "$root/images/lib-rootfs.sh"

outdir=${1:-$root/build/guest/riscv64}
mkdir -p "$outdir"
outdir=$(readlink -f "$outdir")
outputs=(Image fw_dynamic.bin initramfs.cpio.gz root.img VERSIONS)
# vsock-test (images/vsock-test.c): busybox has no AF_VSOCK; a static
# program built with the cross compiler goes into /bin of the initramfs and
# /usr/bin of the root disk.  Its source counts as an input for caching.
vsock_src=$root/images/vsock-test.c
guest_libs+=("$vsock_src")
# The vsock modules (all =m in trixie's riscv64 kernel), loaded at boot by
# /init with the virtio ones: about 70 KB, for --device virtio-vsock.
guest_modules_vsock=(vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport)
# virtio-balloon (=m; the balloon core, its compaction and free page
# reporting are built in): 18 KB more, for --device virtio-balloon.
guest_modules_balloon=(virtio_balloon)

if guest_fresh "$script" "$outdir" "${outputs[@]}"; then
    log "up to date: $outdir"
    exit 0
fi
guest_check_tools
rootfs_check_tools
cross_cc=${PETREL_GUEST_CC:-riscv64-linux-gnu-gcc}
command -v "$cross_cc" >/dev/null 2>&1 ||
    die "$cross_cc not found (run: scripts/deps.sh guest)"

apt_setup "${PETREL_APT_DIR:-$root/build/apt-riscv64}" riscv64 \
    "${PETREL_DEBIAN_MIRROR:-http://deb.debian.org/debian}" "${PETREL_DEBIAN_SUITE:-trixie}"
apt_update

kpkg=$(apt_real_dep linux-image-riscv64 '^linux-image-[0-9].*-riscv64$')
# dropbear (ssh) for the root disk, and the packages it depends on: the
# shared libraries it needs come from these.
mapfile -t sshpkgs < <(apt_depends dropbear-bin)
[ "${sshpkgs[0]:-}" = dropbear-bin ] || die "apt-cache depends dropbear-bin: nothing"
pkgs=("$kpkg" busybox-static opensbi "${sshpkgs[@]}")
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
initramfs_modules "$stage" "$kroot" "${guest_modules_virtio[@]}" "${guest_modules_input[@]}" \
    "${guest_modules_vsock[@]}" "${guest_modules_balloon[@]}"
vsock_bin="$apt_dir/vsock-test"
"$cross_cc" -static -O2 -s -Wall -o "$vsock_bin" "$vsock_src" || die "building vsock-test failed"
install -m 0755 "$vsock_bin" "$stage/bin/vsock-test"
# ext4 (guest_modules_ext4, modules in this kernel) is loaded only with
# root= on the command line: it takes boot time and about 20 MB more RAM
# (at --memory 96M loading ext4 runs out of memory and /init stays in the
# initramfs), so the initramfs boot doesn't load it.  Kept xz-compressed
# (-x), its modules' 8.4 MB add 0.7 MB to what the kernel unpacks at every
# boot.
initramfs_modules "$stage" "$kroot" -l load-order.rootfs -x "${guest_modules_ext4[@]}"
# The display (guest_modules_gpu), loaded by /init only with a virtio-gpu;
# xz'd like ext4's, so a boot without one pays only a little unpacking.
initramfs_modules "$stage" "$kroot" -l load-order.gpu -x "${guest_modules_gpu[@]}"

rstage="$apt_dir/rootfs"
rootfs_stage "$rstage" "$busybox" riscv64 build-riscv64.sh "$kroot" \
    "${guest_modules_virtio[@]}" "${guest_modules_input[@]}" "${guest_modules_ext4[@]}" \
    "${guest_modules_vsock[@]}" "${guest_modules_balloon[@]}"
install -m 0755 "$vsock_bin" "$rstage/usr/bin/vsock-test"
db="$ext/dropbear-bin"
rootfs_programs "$rstage" riscv64-linux-gnu \
    "$db/usr/sbin/dropbear" "$db/usr/bin/dropbearkey" "$db/usr/bin/dbclient" \
    -- "${sshpkgs[@]/#/$ext/}"

tmp=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
initramfs_pack "$stage" "$tmp/initramfs.cpio.gz"
rootfs_image "$rstage" "$tmp/root.img" "${PETREL_ROOT_DISK_SIZE:-64M}"
cp "$kernel" "$tmp/Image"
cp "$fw" "$tmp/fw_dynamic.bin"
versions_file "$tmp/VERSIONS" riscv64 build-riscv64.sh "$kernel"

# Install: VERSIONS last, so an interrupted build is never taken as fresh.
for f in "${outputs[@]}"; do
    mv -f "$tmp/$f" "$outdir/$f"
done
rm -rf "$ext" "$rstage"     # ~150 MB of extracted packages; the .debs stay cached
log "built $outdir:"
sed 's/^/  /' "$outdir/VERSIONS" >&2
