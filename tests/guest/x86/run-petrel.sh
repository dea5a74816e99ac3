#!/bin/bash
# Run the x86-64 guest test programs under Petrel.
#   run-petrel.sh OUT_DIR [--expect-fail]
# Env: PETREL (path to the petrel binary), TIMEOUT (seconds, 60).
# Petrel's exit status: 0 pass (debug port 0x501 written with 0), 5 guest
# failure (non-zero written), 2 reboot (i8042 reset, triple fault),
# 4 --timeout.  --expect-fail: for BREAK=1 builds, every run must print
# FAIL and exit 5.  Logs: OUT_DIR/logs-petrel/<run>.log.
set -u
OUT=${1:?usage: run-petrel.sh OUT_DIR [--expect-fail]}
EXPECT_FAIL=0
[ "${2:-}" = --expect-fail ] && EXPECT_FAIL=1
PETREL=${PETREL:-petrel}
TIMEOUT=${TIMEOUT:-60}
CMDLINE="petrel-test-cmdline answer=42"
LOGS=$OUT/logs-petrel
mkdir -p "$LOGS"
PASSED=0
FAILED=0

# run NAME LOGNAME KIND EXPECT_LINE CPUS KERNEL [PETREL-ARGS...]
#   KIND pass: exit 0 and a line "PASS NAME"; reset: exit 2, no FAIL line
run() {
    local name=$1 log=$2 kind=$3 expect=$4 cpus=$5 kernel=$6
    shift 6
    local t0 t1 rc out ok=1 why=""
    t0=$(date +%s.%N)
    timeout $((TIMEOUT + 10)) "$PETREL" run --arch x86_64 --kernel "$kernel" --append "$CMDLINE" \
        --cpus "$cpus" --timeout "$TIMEOUT" "$@" </dev/null >"$LOGS/$log.log" 2>"$LOGS/$log.err"
    rc=$?
    t1=$(date +%s.%N)
    out=$(tr -d '\r' <"$LOGS/$log.log")
    if [ $EXPECT_FAIL = 1 ]; then
        [ $rc = 5 ] || { ok=0; why="exit status $rc, want 5"; }
        grep -q "^FAIL $name: " <<<"$out" || { ok=0; why="$why; no FAIL line"; }
    elif [ "$kind" = reset ]; then
        [ $rc = 2 ] || { ok=0; why="exit status $rc, want 2 (reboot)"; }
        grep -q "^FAIL" <<<"$out" && { ok=0; why="$why; FAIL line"; }
        grep -q "expecting" <<<"$out" || { ok=0; why="$why; did not start"; }
    else
        [ $rc = 0 ] || { ok=0; why="exit status $rc, want 0"; }
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
        printf 'ok   %-32s %6ss  %s\n' "$log" "$secs" "$what"
    else
        FAILED=$((FAILED + 1))
        printf 'FAIL %-32s %6ss  %s\n' "$log" "$secs" "${why#; }"
        tail -n 8 <<<"$out" | sed 's/^/     | /'
        tail -n 3 "$LOGS/$log.err" | sed 's/^/     ! /'
    fi
}

cd "$OUT" || exit 1

run boot_pvh boot_pvh pass "" 1 boot_pvh.elf
run boot_bzimage boot_bzimage pass "entered via 64-bit entry" 1 boot_bzimage.bzImage
run io io pass "" 1 io.elf
run timer timer pass "" 1 timer.elf
run smp smp-2cpus pass "smp: 2 CPUs (from the MP table)" 2 smp.elf
run smp smp-4cpus pass "smp: 4 CPUs (from the MP table)" 4 smp.elf
run compute compute pass "" 1 compute.elf
run reset_kbd reset_kbd reset "" 1 reset_kbd.elf
run reset_triple reset_triple reset "" 1 reset_triple.elf
run virtio_rng virtio_rng pass "" 1 virtio_rng.elf --device virtio-rng
rm -f "$LOGS/virtio_blk.img" && truncate -s 1M "$LOGS/virtio_blk.img"
run virtio_blk virtio_blk pass "" 1 virtio_blk.elf --disk "$LOGS/virtio_blk.img,serial=petrel-x86-blk"

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
