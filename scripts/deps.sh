#!/usr/bin/env bash
# Install the Debian 12 (bookworm) packages Petrel needs, per group.
#
#   scripts/deps.sh [build|guest|test|all]...     (default: build)
#
#   build  compile Petrel (gcc, make, libfdt, liburing, zlib, zstd, libslirp,
#          libmicrohttpd and jansson for the API, libcurl for its client,
#          libseccomp for the system call filters, GnuTLS headers for petrel
#          serve's WebSocket handshake (SHA-1), libvncserver for --vnc;
#          xterm.js (node-xterm, bundled by python3 at build time) and noVNC
#          for petrel serve's consoles in the page)
#   guest  build the default guest images from Debian packages (images/), and
#          the riscv64 cross compiler for the guest's vsock-test
#   test   run the test suite and the benchmarks (pytest, pexpect, the riscv64
#          cross compiler for guest test programs, qemu-user-static as FP
#          oracle, dtc for FDT checks, qemu-system-misc as benchmark peer,
#          gdb for the seccomp test, headless chromium + chromedriver +
#          selenium for the dashboard's browser test, linux-perf for
#          bench/perf-boot.sh)
#
# Only packages that are missing are installed, and `apt-get update` runs only
# then: with everything present this is a few dpkg-query calls, fast and
# offline-safe.
set -euo pipefail

pkgs_build=(gcc make libc6-dev libfdt-dev liburing-dev pkg-config zlib1g-dev libzstd-dev libslirp-dev
            libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libseccomp-dev
            libgnutls28-dev openssl libvncserver-dev python3 node-xterm novnc)
pkgs_guest=(apt debian-archive-keyring cpio xz-utils zstd gzip kmod e2fsprogs binutils
            gcc-riscv64-linux-gnu libc6-dev-riscv64-cross)
pkgs_test=(python3 python3-pytest python3-pexpect
           gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu libc6-dev-riscv64-cross
           qemu-user-static device-tree-compiler qemu-system-misc qemu-system-x86 qemu-utils
           time bc clang iproute2 socat openssh-client curl gdb
           chromium chromium-driver python3-selenium linux-perf)

usage() {
    echo "usage: $0 [build|guest|test|all]..." >&2
    exit 2
}

[ $# -gt 0 ] || set -- build
want=()
for group in "$@"; do
    case "$group" in
        build) want+=("${pkgs_build[@]}") ;;
        guest) want+=("${pkgs_guest[@]}") ;;
        test)  want+=("${pkgs_test[@]}") ;;
        all)   want+=("${pkgs_build[@]}" "${pkgs_guest[@]}" "${pkgs_test[@]}") ;;
        -h|--help) usage ;;
        *) echo "$0: unknown group '$group'" >&2; usage ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    # db:Status-Status is "installed" only for a fully installed package; an
    # unknown package makes dpkg-query fail, which also counts as missing.
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$st" != installed ]; then
        case " ${missing[*]-} " in *" $p "*) ;; *) missing+=("$p") ;; esac
    fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing missing Debian packages: ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg instead of failing on its lock.
lock=(-o DPkg::Lock::Timeout=600)
"${sudo[@]}" apt-get "${lock[@]}" update
"${sudo[@]}" apt-get "${lock[@]}" install -y --no-install-recommends "${missing[@]}"
