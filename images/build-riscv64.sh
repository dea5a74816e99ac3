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
#   initramfs.cpio.gz  gzip'd newc cpio: static busybox + /init (see below)
#   VERSIONS           the Debian packages and versions used
#
# Packages come from trixie (riscv64 is an official port there) through apt
# with a private configuration under build/apt-riscv64, so the host's apt
# state is never touched.  Cached: if every output exists and is newer than
# this script, nothing is done (PETREL_GUEST_REBUILD=1 forces a rebuild).
# Environment: PETREL_APT_DIR (apt state/cache, default build/apt-riscv64),
# PETREL_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# PETREL_DEBIAN_SUITE (default trixie).
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
root=$(dirname "$(dirname "$script")")
outdir=${1:-$root/build/guest/riscv64}
mkdir -p "$outdir"
outdir=$(readlink -f "$outdir")
aptdir=${PETREL_APT_DIR:-$root/build/apt-riscv64}
mirror=${PETREL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${PETREL_DEBIAN_SUITE:-trixie}
outputs=(Image fw_dynamic.bin initramfs.cpio.gz VERSIONS)

log() { echo "build-riscv64: $*" >&2; }
die() { log "error: $*"; exit 1; }

fresh=1
for f in "${outputs[@]}"; do
    [ "$outdir/$f" -nt "$script" ] || fresh=0
done
if [ "$fresh" = 1 ] && [ "${PETREL_GUEST_REBUILD:-0}" != 1 ]; then
    log "up to date: $outdir"
    exit 0
fi

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found (run: scripts/deps.sh guest)"
done
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring missing (run: scripts/deps.sh guest)"

# --- private apt configuration ----------------------------------------------
mkdir -p "$aptdir"/{etc,state/lists/partial,cache/archives/partial,debs}
aptdir=$(readlink -f "$aptdir")
echo "deb [arch=riscv64 signed-by=$keyring] $mirror $suite main" \
    >"$aptdir/etc/sources.list"
: >"$aptdir/state/status"             # an empty dpkg database: nothing installed
apt_opts=(
    -o "Dir::Etc::SourceList=$aptdir/etc/sources.list"
    -o "Dir::Etc::SourceParts=$aptdir/etc/sources.list.d"
    -o "Dir::Etc::Preferences=$aptdir/etc/preferences"
    -o "Dir::Etc::PreferencesParts=$aptdir/etc/preferences.d"
    -o "Dir::State=$aptdir/state"
    -o "Dir::State::status=$aptdir/state/status"
    -o "Dir::Cache=$aptdir/cache"
    -o "Dir::Cache::pkgcache=$aptdir/cache/pkgcache.bin"
    -o "Dir::Cache::srcpkgcache=$aptdir/cache/srcpkgcache.bin"
    -o APT::Architecture=riscv64
    -o APT::Architectures=riscv64
    -o Debug::NoLocking=1
    -o APT::Sandbox::User=root
    -o Acquire::Languages=none
    -q
)
mkdir -p "$aptdir/etc/sources.list.d" "$aptdir/etc/preferences.d"

log "apt-get update ($suite riscv64)"
if ! apt-get "${apt_opts[@]}" update >"$aptdir/update.log" 2>&1; then
    if compgen -G "$aptdir/state/lists/*_Packages*" >/dev/null; then
        log "apt-get update failed; using the package lists from the last update"
        sed 's/^/  /' "$aptdir/update.log" >&2
    else
        cat "$aptdir/update.log" >&2
        die "apt-get update failed and there are no cached package lists"
    fi
fi

# linux-image-riscv64 is a meta package: find the real, versioned package.
kpkg=$(apt-cache "${apt_opts[@]}" depends linux-image-riscv64 |
       awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-riscv64$/ { print $2; exit }')
[ -n "$kpkg" ] || die "cannot resolve the dependency of linux-image-riscv64"
pkgs=("$kpkg" busybox-static opensbi)
log "packages: ${pkgs[*]}"

# --- download (reusing .debs already downloaded) -------------------------------
debs=()
for p in "${pkgs[@]}"; do
    ver=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$p" |
          awk '$1 == "Version:" { print $2; exit }')
    [ -n "$ver" ] || die "no version of $p in $suite"
    deb=""
    for f in "$aptdir"/debs/"${p}"_*.deb; do
        [ -e "$f" ] || continue
        if [ "$(dpkg-deb -f "$f" Version 2>/dev/null)" = "$ver" ]; then deb=$f; break; fi
    done
    if [ -z "$deb" ]; then
        rm -f "$aptdir"/debs/"${p}"_*.deb
        log "downloading $p $ver"
        (cd "$aptdir/debs" && apt-get "${apt_opts[@]}" download "$p=$ver") ||
            die "apt-get download $p=$ver failed"
        for f in "$aptdir"/debs/"${p}"_*.deb; do deb=$f; done
        [ -e "$deb" ] || die "downloaded $p but found no .deb"
    fi
    debs+=("$deb")
done

# --- extract ----------------------------------------------------------------
ext="$aptdir/extract"
rm -rf "$ext"
mkdir -p "$ext"
for i in "${!pkgs[@]}"; do
    mkdir -p "$ext/${pkgs[$i]}"
    dpkg-deb -x "${debs[$i]}" "$ext/${pkgs[$i]}"
done
kroot="$ext/$kpkg"
bbroot="$ext/busybox-static"
sbiroot="$ext/opensbi"

kernels=("$kroot"/boot/vmlinux-*)
if [ ${#kernels[@]} -ne 1 ] || [ ! -f "${kernels[0]}" ]; then
    die "expected exactly one /boot/vmlinux-* in $kpkg"
fi
kernel=${kernels[0]}
# A RISC-V Image starts with "RISCV\0\0\0" at offset 48 and "RSC\x05" at 56.
[ "$(dd if="$kernel" bs=1 skip=48 count=5 status=none)" = RISCV ] ||
    die "$kernel is not a RISC-V Image"
fw="$sbiroot/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"
[ -f "$fw" ] || die "no fw_dynamic.bin in opensbi"
busybox="$bbroot/usr/bin/busybox"
[ -f "$busybox" ] || busybox="$bbroot/bin/busybox"
[ -f "$busybox" ] || die "no busybox in busybox-static"

# --- initramfs ----------------------------------------------------------------
stage="$aptdir/initramfs"
rm -rf "$stage"
mkdir -p "$stage"
(
    umask 022
    cd "$stage"
    mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys run mnt var/log root tmp lib
    chmod 1777 tmp
    chmod 0700 root
    install -m 0755 "$busybox" bin/busybox

    # Applets linked at build time (the riscv64 busybox can't run on the host);
    # /init runs `busybox --install -s` at boot for the rest.
    applets='sh ash ls cat echo mount umount mkdir uname poweroff reboot halt
        dmesg ps top free df du cp mv rm ln grep sed awk head tail wc sleep date
        hostname ifconfig ip ping vi more less find xargs sort uniq tr cut
        md5sum sha256sum dd hexdump od sync true false test [ [[ env printenv
        id whoami chmod chown stat touch basename dirname readlink realpath
        mknod setsid cttyhack getty login clear reset stty tty which expr seq
        yes kill killall pidof nproc uptime watch insmod modprobe lsmod rmmod'
    for a in $applets; do
        ln -s busybox "bin/$a"
    done

    cat >init <<'EOF'
#!/bin/sh
# Petrel default riscv64 guest init (images/build-riscv64.sh).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev
# The kernel may have started us without a console on fds 0-2.
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
/bin/busybox --install -s 2>/dev/null
hostname petrel
echo "Welcome to Petrel (riscv64)"
uname -r
exec setsid cttyhack /bin/sh -l
EOF
    chmod 0755 init

    cat >etc/profile <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
export PS1='petrel:\w# '
EOF
    echo 'root:x:0:0:root:/root:/bin/sh' >etc/passwd
    echo 'root:x:0:' >etc/group
    echo petrel >etc/hostname
    chmod 0644 etc/profile etc/passwd etc/group etc/hostname
)

# Reproducible archive: fixed owner, mtimes and inode numbers, sorted names.
epoch=${SOURCE_DATE_EPOCH:-0}
find "$stage" -exec touch -h -d "@$epoch" {} +

tmp=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null --quiet -o -H newc --owner=0:0 --reproducible) |
    gzip -9 -n >"$tmp/initramfs.cpio.gz"
cp "$kernel" "$tmp/Image"
cp "$fw" "$tmp/fw_dynamic.bin"
{
    echo "# Petrel default riscv64 guest, built $(date -u +%Y-%m-%dT%H:%M:%SZ) by images/build-riscv64.sh"
    echo "# source: deb $mirror $suite main (riscv64)"
    for d in "${debs[@]}"; do
        echo "$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version) $(dpkg-deb -f "$d" Architecture)"
    done
    echo "kernel-file $(basename "$kernel")"
} >"$tmp/VERSIONS"

# Install: VERSIONS last, so an interrupted build is never taken as fresh.
for f in Image fw_dynamic.bin initramfs.cpio.gz VERSIONS; do
    mv -f "$tmp/$f" "$outdir/$f"
done
rm -rf "$ext"       # ~150 MB of extracted packages; the .debs stay cached
log "built $outdir:"
sed 's/^/  /' "$outdir/VERSIONS" >&2
