#!/bin/sh
# diskbench-run: installed as /bin/diskbench-run in the extra initramfs that
# bench/disk-io.sh appends to the default guest's.  Typed on the guest's
# console: waits for the first virtio disk, silences kernel console messages
# (they would interleave with the results), and runs diskbench on it.
#   diskbench-run [diskbench options]
dmesg -n 1
i=0
while [ ! -b /dev/vda ] && [ $i -lt 30 ]; do
    sleep 1
    i=$((i + 1))
done
if [ ! -b /dev/vda ]; then
    echo "diskbench error: no /dev/vda (block devices: $(echo /sys/block/*))"
    exit 1
fi
exec /bin/diskbench "$@" /dev/vda
