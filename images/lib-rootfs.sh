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
#   rootfs_programs DIR TRIPLET PROGRAM... -- PKGROOT...
#                                        dynamically linked programs from
#                                        extracted packages, with the shared
#                                        libraries they need (found in the
#                                        PKGROOTs) and the dynamic loader
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
#                        name, prints the banner, reads the config disk
#                        (ssh keys, host name), starts syslogd, the network
#                        (udhcpc on every card, in the background), acpid
#                        (the power button) and dropbear (ssh; its host key
#                        is made at the first boot)
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
    command -v readelf >/dev/null 2>&1 || die "readelf not found (install binutils)"
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
        # In parts: in the unquoted ones only $arch and $script expand;
        # guest_net_start and guest_power_start (lib-apt.sh) write the
        # network's and the power button's, as in the initramfs.
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

# The config disk: a virtio disk whose serial is petrel-config holds a
# ustar archive.  It is unpacked to /run/petrel-config, and of its files
#   authorized_keys  becomes /root/.ssh/authorized_keys (root's ssh keys)
#   hostname         the host name (kept in /etc/hostname and /etc/hosts)
# are used; any other file is left there, unused.  No such disk: nothing
# changes.
config_hostname() {
    local h='' old=''
    read -r h <"$1" 2>/dev/null
    case $h in
        ''|-*|*[!A-Za-z0-9.-]*)
            echo "config: hostname '$h' is not a host name (letters, digits, - and .): ignored"
            return 1 ;;
    esac
    if [ ${#h} -gt 64 ]; then
        echo "config: hostname '$h' is longer than 64 characters: ignored"
        return 1
    fi
    hostname "$h"
    read -r old </etc/hostname 2>/dev/null
    [ "$old" != "$h" ] || return 0
    # (not on a read-only /)
    {
        echo "$h" >/etc/hostname.new && mv -f /etc/hostname.new /etc/hostname &&
            awk -v h="$h" '$1 == "127.0.1.1" { $0 = "127.0.1.1\t" h; done = 1 } { print }
                END { if (!done) print "127.0.1.1\t" h }' /etc/hosts >/etc/hosts.new &&
            mv -f /etc/hosts.new /etc/hosts
    } 2>/dev/null
    return 0
}
config_keys() {
    umask 077
    mkdir -p /root/.ssh && chmod 0700 /root/.ssh &&
        cat "$1" >/root/.ssh/authorized_keys.new &&
        chmod 0600 /root/.ssh/authorized_keys.new &&
        mv -f /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys
    local rc=$?
    umask 022
    return $rc
}
config_disk() {
    local s serial dev used='' c=/run/petrel-config
    for s in /sys/block/vd*/serial; do
        serial=''
        read -r serial <"$s" 2>/dev/null      # no newline at its end
        [ "$serial" = petrel-config ] || continue
        dev=${s%/serial}
        dev=/dev/${dev##*/}
        rm -rf "$c"
        mkdir -m 0700 "$c"
        if ! tar -x -o -f "$dev" -C "$c" 2>/dev/null; then
            rm -rf "$c"
            echo "config: $dev (petrel-config) holds no readable tar archive: not used"
            return 1
        fi
        if [ -f "$c/authorized_keys" ] && [ ! -L "$c/authorized_keys" ] &&
            config_keys "$c/authorized_keys"; then
            used="$used authorized_keys"
        fi
        if [ -f "$c/hostname" ] && [ ! -L "$c/hostname" ] && config_hostname "$c/hostname"; then
            used="$used hostname"
        fi
        echo "config: $dev (petrel-config):${used:- nothing used}"
        return 0
    done
}
config_disk
unset -f config_disk config_keys config_hostname

# Logs: busybox syslogd keeps them in a 128 KiB ring in RAM (logread shows
# them): udhcpc's, dropbear's and acpid's.
syslogd -C128
EOF
            guest_net_start -S
            guest_power_start
            cat <<'EOF'

# ssh: dropbear on port 22.  Root logs in with a key in
# /root/.ssh/authorized_keys, never with a password (-s).  The host key is
# made at the first boot, never in the image: ed25519, which OpenSSH
# clients prefer and which takes 0.1 s to make here (RSA: 28 s); dropbearkey
# writes its public half to dropbear_ed25519_host_key.pub.  With / read-only
# it is made in /run/dropbear, anew at every boot.
ssh_key() {
    local dir=/etc/dropbear a b rest
    [ -w "$dir" ] || { dir=/run/dropbear; mkdir -p -m 0700 "$dir"; }
    ssh_hostkey=$dir/dropbear_ed25519_host_key
    [ ! -s "$ssh_hostkey" ] || return 0
    rm -f "$ssh_hostkey" "$ssh_hostkey.pub"
    if ! dropbearkey -t ed25519 -f "$ssh_hostkey" >/run/dropbearkey.out 2>&1; then
        echo "ssh: dropbearkey failed: $(cat /run/dropbearkey.out)"
        rm -f /run/dropbearkey.out "$ssh_hostkey"
        return 1
    fi
    while read -r a b rest; do
        [ "$a" != Fingerprint: ] || echo "ssh: host key made: ED25519 $b"
    done </run/dropbearkey.out
    rm -f /run/dropbearkey.out
    chmod 0644 "$ssh_hostkey.pub" 2>/dev/null
}
if ssh_key; then
    dropbear -s -r "$ssh_hostkey"
else
    dropbear -s -R          # makes a host key at the first connection
fi
unset -f ssh_key
unset ssh_hostkey
# With a display (the initramfs loaded virtio-gpu's modules: a frame
# buffer), a second shell on its screen (tty1), as the initramfs has; not
# when the console is there already (console=tty0/tty1).
if [ -e /sys/class/graphics/fb0 ] && [ -c /dev/tty1 ]; then
    case " $(cat /proc/cmdline) " in
        *" console=tty0 "*|*" console=tty1 "*) ;;
        *) setsid -c /bin/sh -c 'echo "Welcome to Petrel"; uname -r; exec /bin/sh -l' \
               <>/dev/tty1 >&0 2>&1 & ;;
    esac
fi
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
        printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' \
            'hosts: files dns' >etc/nsswitch.conf
        chmod 0644 etc/inittab etc/fstab etc/profile etc/passwd etc/group \
            etc/hostname etc/hosts etc/shells etc/os-release etc/nsswitch.conf
        guest_net_files .
        guest_power_files . init
        # dropbear's host key, made at the first boot (rcS)
        mkdir -m 0755 etc/dropbear
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

# The sonames a program or library needs (DT_NEEDED), one a line.
elf_needed() {
    LC_ALL=C readelf -dW "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
}

# Copy PKGROOT/REL to DIR/REL, merged-/usr (lib/... goes to usr/lib/...); a
# symbolic link is copied as one, with what it leads to (in the same
# package).
rootfs_copy_file() {
    local dir=$1 pkgroot=$2 rel=$3 dst t
    dst=$rel
    case $dst in lib/*|bin/*|sbin/*) dst=usr/$dst ;; esac
    [ ! -e "$dir/$dst" ] && [ ! -L "$dir/$dst" ] || return 0
    mkdir -p "$dir/${dst%/*}"
    if [ -L "$pkgroot/$rel" ]; then
        t=$(readlink "$pkgroot/$rel")
        case $t in /*|*..*) die "$pkgroot/$rel: a link to $t (only links within a directory are copied)" ;; esac
        cp -P "$pkgroot/$rel" "$dir/$dst"
        rootfs_copy_file "$dir" "$pkgroot" "${rel%/*}/$t"
    else
        cp --preserve=mode "$pkgroot/$rel" "$dir/$dst"
    fi
}

# Programs from extracted Debian packages, with what they need to run:
# each PROGRAM (a file in a PKGROOT) goes to DIR/usr/bin; then every shared
# library it needs (DT_NEEDED), and every library those need, found in the
# PKGROOTs' lib/TRIPLET, usr/lib/TRIPLET, lib or usr/lib (what the dynamic
# loader searches), is copied to the same place in DIR (merged /usr), under
# its soname; the dynamic loader (PT_INTERP) goes to its path too.  A
# library found nowhere is an error: the packages are apt_depends' list.
rootfs_programs() {
    local dir=$1 triplet=$2 p f so r rel found interp=""
    shift 2
    local progs=() roots=() queue=() seen=" "
    while [ $# -gt 0 ] && [ "$1" != -- ]; do progs+=("$1"); shift; done
    [ $# -gt 0 ] || die "rootfs_programs: no -- before the package roots"
    shift
    roots=("$@")
    for p in "${progs[@]}"; do
        [ -f "$p" ] || die "no program $p"
        install -m 0755 "$p" "$dir/usr/bin/${p##*/}"
        queue+=("$p")
        f=$(LC_ALL=C readelf -lW "$p" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
        [ -n "$f" ] || die "$p has no program interpreter (not dynamically linked?)"
        [ -z "$interp" ] || [ "$interp" = "$f" ] || die "$p wants the loader $f, not $interp"
        interp=$f
    done
    while [ ${#queue[@]} -gt 0 ]; do
        f=${queue[0]}
        queue=("${queue[@]:1}")
        for so in $(elf_needed "$f"); do
            case $seen in *" $so "*) continue ;; esac
            seen+="$so "
            found=""
            for r in "${roots[@]}"; do
                for rel in "lib/$triplet/$so" "usr/lib/$triplet/$so" "lib/$so" "usr/lib/$so"; do
                    if [ -e "$r/$rel" ]; then found=$r/$rel; break 2; fi
                done
            done
            [ -n "$found" ] || die "${f##*/} needs $so, which none of these packages has: ${roots[*]##*/}"
            rel=${found#"$r"/}
            case $rel in lib/*) rel=usr/$rel ;; esac
            mkdir -p "$dir/${rel%/*}"
            cp -L --preserve=mode "$found" "$dir/$rel"
            queue+=("$found")
        done
    done
    rel=${interp#/}
    found=""
    for r in "${roots[@]}"; do
        if [ -e "$r/$rel" ]; then found=$r; break; fi
        case $rel in lib/*) if [ -e "$r/usr/$rel" ]; then found=$r; rel=usr/$rel; break; fi ;; esac
    done
    [ -n "$found" ] || die "the dynamic loader $interp is in none of the packages"
    rootfs_copy_file "$dir" "$found" "$rel"
    log "root disk: ${progs[*]##*/} and${seen% } ($interp)"
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
