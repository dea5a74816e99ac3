# shellcheck shell=bash
# The default guests' ext4 root disk; sourced after lib-apt.sh, not run.
#
#   rootfs_check_tools                   dies if mkfs.ext4/debugfs are missing
#   rootfs_stage DIR BUSYBOX ARCH SCRIPTNAME KROOT MODULE...
#                                        the root tree: busybox and all its
#                                        applets, kernel modules MODULE...
#                                        (and their dependencies) of the
#                                        extracted kernel package KROOT with
#                                        depmod's files, /etc and busybox
#                                        init's scripts
#   rootfs_image DIR OUT SIZE            a reproducible ext4 image of DIR
#
# The tree is merged-/usr, as in Arch Linux: every program is in /usr/bin,
# and /bin, /sbin and /usr/sbin lead there, so any of the usual paths of a
# busybox applet works (/sbin/init, /bin/sh, /usr/bin/env).  /lib is
# /usr/lib.
#
# Boot: the initramfs /init mounts the disk (root=/dev/vda on the kernel
# command line, see initramfs_stage in lib-apt.sh) and switch_roots to its
# /sbin/init, busybox init, which runs /etc/inittab:
#   /etc/init.d/rcS      mounts /dev /proc /sys /dev/pts /run /tmp (those
#                        the initramfs has not passed on), sets the host
#                        name, prints the banner
#   /etc/init.d/console  the login shell on the console; when it exits, the
#                        guest powers off
#   /etc/init.d/rcK      on poweroff, reboot or halt: stops every process,
#                        syncs and remounts / read-only, so the file system
#                        is clean when the guest stops.  `poweroff -f` skips
#                        all that (ext4's journal recovers at the next mount)

guest_libs+=("$(readlink -f "${BASH_SOURCE[0]}")")

rootfs_check_tools() {
    local path=$PATH:/usr/sbin:/sbin
    mkfs_ext4=$(PATH=$path command -v mkfs.ext4) ||
        die "mkfs.ext4 not found (run: scripts/deps.sh guest)"
    debugfs=$(PATH=$path command -v debugfs) ||
        die "debugfs not found (run: scripts/deps.sh guest)"
}

# The applet names of a busybox binary, one a line, read from the binary
# (a foreign busybox can't run on the host to say --list): its applet_names
# table is the sorted names, each NUL-terminated, "[" and "[[" first, then
# an empty string.  Dies unless that looks right.
busybox_applets() {
    local names
    # (awk reads to the end: no SIGPIPE for tr under pipefail)
    names=$(LC_ALL=C tr '\0' '\n' <"$1" | LC_ALL=C awk '
        state >= 2 { next }
        state == 0 && prev ~ /\[$/ && $0 == "[[" { state = 1; print "["; print; next }
        state == 1 && $0 == "" { state = 2; next }
        state == 1 && $0 !~ /^[a-z0-9][a-z0-9._-]*$/ { state = 3; next }
        state == 1 { print }
        { prev = $0 }
        END { if (state != 2) exit 1 }') || die "no applet table found in $1"
    local n
    n=$(grep -c . <<<"$names")
    if [ "$n" -lt 50 ] || ! grep -qx sh <<<"$names" || ! grep -qx init <<<"$names" ||
        ! grep -qx mount <<<"$names"; then
        die "the applet table read from $1 looks wrong ($n names)"
    fi
    grep -vx busybox <<<"$names"
}

rootfs_stage() {
    local stage=$1 busybox=$2 arch=$3 script=$4 kroot=$5 kver kdir a m
    shift 5
    rm -rf "$stage"
    mkdir -p "$stage"
    (
        umask 022
        cd "$stage" || exit 1
        mkdir -p usr/bin usr/lib etc/init.d dev proc sys run tmp root mnt home var/log
        chmod 1777 tmp
        chmod 0700 root
        ln -s usr/bin bin
        ln -s usr/bin sbin
        ln -s bin usr/sbin
        ln -s usr/lib lib
        ln -s ../run var/run
        install -m 0755 "$busybox" usr/bin/busybox
        busybox_applets "$busybox" >"$stage/.applets" || exit 1
        while read -r a; do
            ln -s busybox "usr/bin/$a"
        done <"$stage/.applets"
        log "root disk: busybox with $(wc -l <"$stage/.applets") applets"
        rm -f "$stage/.applets"

        cat >etc/inittab <<EOF
# /etc/inittab of the Petrel default $arch guest's root disk (images/$script).
# busybox init: see images/lib-rootfs.sh.
::sysinit:/etc/init.d/rcS
::once:/etc/init.d/console
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
::restart:/sbin/init
EOF
        # Four parts; in the unquoted ones only $arch and $script expand.
        {
            cat <<EOF
#!/bin/sh
# System start of the Petrel default $arch guest's root disk (images/$script).
export PATH=/usr/bin
EOF
            cat <<'EOF'
# The initramfs passes /dev, /proc, /sys and /run on (mount --move); mount
# what is missing.  (This busybox has no mountpoint applet.)
[ -e /proc/self ] || mount -t proc -o nosuid,nodev,noexec proc /proc
mounted() { awk -v d="$1" '$2 == d { m = 1 } END { exit !m }' /proc/mounts; }
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mounted /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mounted /run || mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mounted /tmp || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
hostname -F /etc/hostname
rootdev='?' roottype='?' rootro=
while read -r dev dir type opts rest; do
    if [ "$dir" = / ]; then
        rootdev=$dev roottype=$type rootro=
        case ,$opts, in *,ro,*) rootro=", read-only" ;; esac
    fi
done </proc/mounts
EOF
            cat <<EOF
echo "Welcome to Petrel ($arch)"
EOF
            cat <<'EOF'
echo "root: $rootdev ($roottype$rootro)"
uname -r
EOF
        } >etc/init.d/rcS
        cat >etc/init.d/console <<'EOF'
#!/bin/sh
# The console shell, started once by init (/etc/inittab).  init made this a
# session leader on /dev/console; cttyhack reopens the real console device
# (ttyS0) and makes it the controlling terminal, so the shell has job
# control and Ctrl-C.  When the shell exits, the guest powers off (cleanly:
# see /etc/init.d/rcK).
exec cttyhack /bin/sh -c '/bin/sh -l; exec poweroff'
EOF
        cat >etc/init.d/rcK <<'EOF'
#!/bin/sh
# Run by init on poweroff, reboot and halt, before it stops the other
# processes itself: stop them first, so that nothing keeps a file open for
# writing, then remount / read-only, which writes back everything and marks
# the file system clean.
export PATH=/usr/bin
kill -TERM -1 2>/dev/null
kill -HUP -1 2>/dev/null        # interactive shells ignore TERM
sleep 0.2
kill -KILL -1 2>/dev/null
sync
n=0
until mount -o remount,ro / 2>/dev/null; do
    n=$((n + 1))
    if [ "$n" -ge 30 ]; then
        echo "rcK: cannot remount / read-only; its journal will recover it at the next mount"
        break
    fi
    sleep 0.1
done
sync
EOF
        chmod 0755 etc/init.d/rcS etc/init.d/console etc/init.d/rcK

        cat >etc/fstab <<'EOF'
# <file system> <dir>     <type>  <options>                     <dump> <pass>
/dev/root       /         ext4    rw,relatime                   0      1
proc            /proc     proc    nosuid,nodev,noexec           0      0
sysfs           /sys      sysfs   nosuid,nodev,noexec           0      0
devpts          /dev/pts  devpts  gid=5,mode=620,ptmxmode=666   0      0
tmpfs           /run      tmpfs   mode=755,nosuid,nodev         0      0
tmpfs           /tmp      tmpfs   mode=1777,nosuid,nodev        0      0
EOF
        cat >etc/profile <<'EOF'
export PATH=/usr/bin
export HOME=/root
export PS1='petrel:\w# '
EOF
        printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
            'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >etc/passwd
        printf '%s\n' 'root:x:0:' 'tty:x:5:' 'nogroup:x:65534:' >etc/group
        echo petrel >etc/hostname
        printf '%s\n' '127.0.0.1	localhost' '127.0.1.1	petrel' >etc/hosts
        echo /bin/sh >etc/shells
        cat >etc/os-release <<EOF
NAME="Petrel guest"
ID=petrel
PRETTY_NAME="Petrel default $arch guest (busybox, Debian kernel)"
EOF
        chmod 0644 etc/inittab etc/fstab etc/profile etc/passwd etc/group \
            etc/hostname etc/hosts etc/shells etc/os-release
    ) || die "staging the root disk failed"

    # Modules as in the initramfs (decompressed, unsigned), under /usr/lib,
    # then depmod's files for just these, so that modprobe works.
    initramfs_modules "$stage/usr" "$kroot" "$@"
    m=$(echo "$stage"/usr/lib/modules/*)
    kver=${m##*/}
    kdir=$kroot/usr/lib/modules/$kver
    [ -d "$kdir" ] || kdir=$kroot/lib/modules/$kver
    rm -f "$m"/load-order* "$m/modules.dep"
    for a in modules.builtin modules.builtin.modinfo modules.order; do
        [ -f "$kdir/$a" ] || die "no $a in $kdir"
    done
    cp "$kdir/modules.builtin" "$kdir/modules.builtin.modinfo" "$m/"
    # modules.order (depmod's order of modules.dep) of just these modules.
    (cd "$m" && find kernel -name '*.ko' | LC_ALL=C sort) |
        awk 'FILENAME == "-" { have[$0] = 1; next }
             { n = $0; sub(/\.ko\.(xz|zst|gz)$/, ".ko", n) }
             n in have { print n; delete have[n] }
             END { for (n in have) print n }' - "$kdir/modules.order" \
        >"$m/modules.order"
    mkdir -p "$stage/.depmod.d"
    # shellcheck disable=SC2154  # set by guest_check_tools (lib-apt.sh)
    "$depmod" -b "$stage" -C "$stage/.depmod.d" "$kver" || die "depmod $kver (root disk) failed"
    rm -rf "$stage/.depmod.d"
    find "$m" -type f -exec chmod 0644 {} +
}

# The ext4 image: mkfs.ext4 -d of the tree, into a sparse SIZE file, made
# reproducible: fixed UUID and directory hash seed, every time stamp
# SOURCE_DATE_EPOCH (default 0; e2fsprogs' E2FSPROGS_FAKE_TIME for the file
# system's own times, which ignores 0: those are then 1), owner root, and a
# private mke2fs.conf (the host's /etc/mke2fs.conf doesn't change the
# features).  mkfs.ext4 -d copies each file's status-change time (ctime),
# which can't be set on the host: debugfs rewrites them, and the owners
# (an unprivileged build's files are the builder's), afterwards.  So two
# builds with the same packages and e2fsprogs are byte-identical.
rootfs_image() {
    local stage=$1 out=$2 size=$3 epoch=${SOURCE_DATE_EPOCH:-0} fake cmds conf
    fake=$epoch
    [ "$fake" -gt 0 ] || fake=1
    conf="$out.mke2fs.conf"
    cmds="$out.debugfs"
    cat >"$conf" <<'EOF'
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
EOF
    find "$stage" -exec touch -h -d "@$epoch" {} +
    rm -f "$out"
    truncate -s "$size" "$out" || die "cannot create $out ($size)"
    LC_ALL=C MKE2FS_CONFIG=$conf E2FSPROGS_FAKE_TIME=$fake \
        "$mkfs_ext4" -q -F -t ext4 -T default -b 4096 -m 0 -L petrel-root \
        -U 5e7a0c1d-7e75-4e3b-9a6f-70e7a1000001 \
        -E hash_seed=5e7a0c1d-7e75-4e3b-9a6f-70e7a1000002,root_owner=0:0,lazy_journal_init=1 \
        -d "$stage" "$out" || die "mkfs.ext4 -d $stage failed"
    (cd "$stage" && find . -print | LC_ALL=C sort) | awk -v t="@$epoch" '
        { p = substr($0, 2); if (p == "") p = "/"
          printf "sif \"%s\" uid 0\nsif \"%s\" gid 0\n", p, p
          printf "sif \"%s\" ctime %s\nsif \"%s\" ctime_extra 0\n", p, t, p
          printf "sif \"%s\" atime %s\nsif \"%s\" atime_extra 0\n", p, t, p
          printf "sif \"%s\" mtime %s\nsif \"%s\" mtime_extra 0\n", p, t, p
          printf "sif \"%s\" crtime_extra 0\n", p }' >"$cmds"
    LC_ALL=C E2FSPROGS_FAKE_TIME=$fake "$debugfs" -w -f "$cmds" "$out" >"$cmds.log" 2>&1 ||
        { cat "$cmds.log" >&2; die "debugfs on $out failed"; }
    # debugfs reports a failed command on its output, not in its status.
    if grep -v '^debugfs[ :]' "$cmds.log" | grep -q .; then
        cat "$cmds.log" >&2
        die "debugfs on $out: a command failed"
    fi
    rm -f "$conf" "$cmds" "$cmds.log"
    "$(dirname "$debugfs")/e2fsck" -fn "$out" >/dev/null 2>&1 || die "e2fsck finds errors in $out"
}
