#!/usr/bin/env bash
# Start-up cost of the kvm engine: Petrel vs QEMU microvm, same tiny guest.
#
#   bench/x86-start.sh [N]        (default N=20)
#
# The guest (bench/guests/x86-exit.S, a PVH ELF) leaves through the debug-exit
# port with its first instruction, so a whole run is: VMM start-up, guest
# entry, one exit, teardown.  For each VMM: median wall time of the whole run
# and peak RSS (/usr/bin/time).  For Petrel also its own measure, from
# `petrel run` starting to parse options to vCPU 0's first exit (-v).  The
# guest touches a few pages, so peak RSS is (almost) all VMM overhead.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
n=${1:-20}
case "$n" in ''|*[!0-9]*|0) echo "usage: $0 [N>0]" >&2; exit 2 ;; esac
petrel=${PETREL:-build/petrel}
qemu=${QEMU:-qemu-system-x86_64}
[ -x "$petrel" ] || { echo "missing $petrel (run: make)" >&2; exit 1; }
[ -e /dev/kvm ] || { echo "no /dev/kvm: nothing to measure" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
guest=$tmp/x86-exit.elf
gcc -m32 -nostdlib -static -Wl,-T,bench/guests/x86-exit.ld -Wl,--build-id=none \
    -o "$guest" bench/guests/x86-exit.S

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

measure() { # name, expected exit status, command...
    local name=$1 want=$2; shift 2
    : > "$tmp/$name.wall"; : > "$tmp/$name.rss"; : > "$tmp/$name.first"
    for _ in $(seq "$n"); do
        set +e
        /usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err"
        rc=$?
        set -e
        [ "$rc" = "$want" ] || { echo "$name: exit status $rc, expected $want" >&2; cat "$tmp/err" >&2; exit 1; }
        awk '{print $1}' "$tmp/time" >> "$tmp/$name.wall"
        awk '{print $2}' "$tmp/time" >> "$tmp/$name.rss"
        sed -n 's/.*first exit to the VMM \([0-9.]*\) ms.*/\1/p' "$tmp/err" >> "$tmp/$name.first"
    done
}

measure petrel 0 "$petrel" run --arch x86_64 --kernel "$guest" --memory 64M -v
measure qemu 1 "$qemu" -M microvm -enable-kvm -m 64M -nographic -no-reboot -nodefaults \
    -kernel "$guest" -device isa-debug-exit,iobase=0x501,iosize=2

pw=$(median < "$tmp/petrel.wall"); qw=$(median < "$tmp/qemu.wall")
pr=$(median < "$tmp/petrel.rss"); qr=$(median < "$tmp/qemu.rss")
pf=$(median < "$tmp/petrel.first")
echo "tiny PVH guest, exit on first instruction, median of $n runs"
printf '%-14s %10s %16s %22s\n' "" "wall (ms)" "peak RSS (MiB)" "start->first exit (ms)"
printf '%-14s %10.1f %16.1f %22s\n' petrel "$(echo "$pw*1000" | bc -l)" "$(echo "$pr/1024" | bc -l)" "$pf"
printf '%-14s %10.1f %16.1f %22s\n' qemu "$(echo "$qw*1000" | bc -l)" "$(echo "$qr/1024" | bc -l)" "-"
printf '%-14s %10.2fx %15.2fx\n' petrel/qemu "$(echo "$pw/$qw" | bc -l)" "$(echo "$pr/$qr" | bc -l)"
