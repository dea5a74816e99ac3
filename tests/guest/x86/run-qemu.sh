#!/bin/bash
# Run the x86-64 guest test programs under QEMU with KVM.
#   run-qemu.sh OUT_DIR [--expect-fail]
# Env: QEMU (qemu-system-x86_64), TIMEOUT (seconds per run, 60).
# --expect-fail: for BREAK=1 builds: every run must print FAIL and exit 3.
# Logs: OUT_DIR/logs/<run>.log.  Last line: "N passed, N failed".
set -u
OUT=${1:?usage: run-qemu.sh OUT_DIR [--expect-fail]}
EXPECT_FAIL=0
[ "${2:-}" = --expect-fail ] && EXPECT_FAIL=1
QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${TIMEOUT:-60}
CMDLINE="petrel-test-cmdline answer=42"
LOGS=$OUT/logs
mkdir -p "$LOGS"
PASSED=0
FAILED=0

# QEMU's isa-debug-exit makes the exit status (V << 1) | 1: 1 = pass, 3 = fail
COMMON=(-enable-kvm -m 256M -nodefaults -display none -serial stdio -no-reboot
        -device isa-debug-exit,iobase=0x501,iosize=2)

# run NAME LOGNAME KIND EXPECT_LINE QEMU-ARGS...
#   KIND pass:  exit 1 and a line "PASS NAME"
#   KIND reset: exit 0 (QEMU -no-reboot) and no FAIL line
#   EXPECT_LINE: a fixed string the output must also contain (or "")
run() {
    local name=$1 log=$2 kind=$3 expect=$4
    shift 4
    local t0 t1 rc out ok=1 why=""
    t0=$(date +%s.%N)
    timeout "$TIMEOUT" "$QEMU" "${COMMON[@]}" "$@" </dev/null >"$LOGS/$log.log" 2>"$LOGS/$log.err"
    rc=$?
    t1=$(date +%s.%N)
    out=$(tr -d '\r' <"$LOGS/$log.log")
    if [ $EXPECT_FAIL = 1 ]; then
        [ $rc = 3 ] || { ok=0; why="exit status $rc, want 3"; }
        grep -q "^FAIL $name: " <<<"$out" || { ok=0; why="$why; no FAIL line"; }
    elif [ "$kind" = reset ]; then
        [ $rc = 0 ] || { ok=0; why="exit status $rc, want 0 (reset with -no-reboot)"; }
        grep -q "^FAIL" <<<"$out" && { ok=0; why="$why; FAIL line"; }
        grep -q "expecting" <<<"$out" || { ok=0; why="$why; did not start"; }
    else
        [ $rc = 1 ] || { ok=0; why="exit status $rc, want 1"; }
        grep -qx "PASS $name" <<<"$out" || { ok=0; why="$why; no PASS line"; }
    fi
    if [ $EXPECT_FAIL = 0 ] && [ -n "$expect" ] && ! grep -qF -- "$expect" <<<"$out"; then
        ok=0
        why="$why; no line with \"$expect\""
    fi
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    if [ $ok = 1 ]; then
        PASSED=$((PASSED + 1))
        local what
        what=$(grep -E "^(FAIL|$name: [0-9]+ checks passed)" <<<"$out" | head -n1)
        printf 'ok   %-44s %6ss  %s\n' "$log" "$secs" "$what"
    else
        FAILED=$((FAILED + 1))
        printf 'FAIL %-44s %6ss  %s\n' "$log" "$secs" "${why#; }"
        tail -n 8 <<<"$out" | sed 's/^/     | /'
        grep -v "host doesn't support requested feature" "$LOGS/$log.err" | tail -n 3 | sed 's/^/     ! /'
    fi
}

cd "$OUT" || exit 1

run boot_pvh boot_pvh pass "" \
    -M pc -kernel boot_pvh.elf -append "$CMDLINE"
run boot_bzimage boot_bzimage-setup16 pass "entered via real-mode setup -> 32-bit entry" \
    -M pc -kernel boot_bzimage.bzImage -append "$CMDLINE"
run boot_bzimage boot_bzimage-entry64 pass "entered via 64-bit entry" \
    -M microvm,auto-kernel-cmdline=off -kernel bzloader.elf -initrd boot_bzimage.bzImage \
    -append "$CMDLINE"
run io io pass "" \
    -M pc -kernel io.elf -append "$CMDLINE"
run timer timer pass "" \
    -M pc -kernel timer.elf -append "$CMDLINE"
# -M pc: SeaBIOS's MP table lists one CPU per package, so one core per socket
run smp smp-pc-2cpus pass "smp: 2 CPUs (from the MP table)" \
    -M pc -smp 2,sockets=2,cores=1,threads=1 -kernel smp.elf -append "$CMDLINE"
run smp smp-pc-4cpus pass "smp: 4 CPUs (from the MP table)" \
    -M pc -smp 4,sockets=4,cores=1,threads=1 -kernel smp.elf -append "$CMDLINE"
# microvm: no firmware has touched the APs before us
run smp smp-microvm-4cpus pass "smp: 4 CPUs (from the ACPI MADT)" \
    -M microvm -smp 4 -kernel smp.elf -append "$CMDLINE"
run compute compute pass "" \
    -M microvm -kernel compute.elf -append "$CMDLINE"
run reset_kbd reset_kbd reset "" \
    -M pc -kernel reset_kbd.elf -append "$CMDLINE"
run reset_triple reset_triple reset "" \
    -M microvm -kernel reset_triple.elf -append "$CMDLINE"
run virtio_rng virtio_rng pass "" \
    -M pc -device virtio-rng-pci,disable-legacy=on -kernel virtio_rng.elf -append "$CMDLINE"
rm -f "$LOGS/virtio_blk.img" && truncate -s 1M "$LOGS/virtio_blk.img"
run virtio_blk virtio_blk pass "" \
    -M pc -drive "file=$LOGS/virtio_blk.img,format=raw,if=none,id=d0" \
    -device virtio-blk-pci,drive=d0,disable-legacy=on,serial=petrel-x86-blk \
    -kernel virtio_blk.elf -append "$CMDLINE"

if [ $EXPECT_FAIL = 0 ] && [ -x ./host_loop ]; then
    guest=$(tr -d '\r' <"$LOGS/compute.log" | sed -n 's/^compute: iterations=[0-9]* cycles=\([0-9]*\) .*/\1/p')
    host=$(./host_loop | sed -n 's/^host: iterations=[0-9]* cycles=\([0-9]*\) .*/\1/p')
    if [ -n "$guest" ] && [ -n "$host" ]; then
        awk -v g="$guest" -v h="$host" \
            'BEGIN { printf "compute: guest/host cycle ratio %.3f (guest %.0f cycles at CPL3, host %.0f)\n", g / h, g, h }'
    fi
fi

echo "$PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
