# shellcheck shell=bash
# Shared by the guest image builders (images/build-*.sh); sourced, not run.
#
# Debian packages through apt with a private configuration (its own sources
# list, state and cache under one directory), so the host's apt state is
# never touched, plus the busybox initramfs both default guests use.
#
# The caller sets `tag` (the prefix of log lines) before sourcing, then:
#   guest_fresh SCRIPT OUTDIR FILE...    0 if every output is newer than
#                                        SCRIPT, this file and the other
#                                        sourced helpers in guest_libs[]
#                                        (and no PETREL_GUEST_REBUILD=1)
#   guest_check_tools                    dies if a host tool is missing
#   apt_setup APTDIR ARCH MIRROR SUITE   private apt config; sets apt_opts[]
#   apt_update                           apt-get update (cached lists if
#                                        offline)
#   apt_real_dep META REGEX              the versioned package META depends on
#   apt_fetch PKG...                     downloads (or reuses) the .debs;
#                                        sets debs[] in the same order
#   apt_extract DIR PKG...               dpkg-deb -x debs[i] into DIR/PKG[i]
#   initramfs_stage DIR BUSYBOX ARCH SCRIPTNAME
#                                        busybox + /init tree
#   initramfs_modules DIR KROOT [-l LIST] MODULE...
#                                        adds kernel modules MODULE... of the
#                                        extracted kernel package KROOT, and
#                                        their dependencies, to the tree (and
#                                        to its load list LIST)
#   initramfs_pack DIR OUT               reproducible gzip'd newc cpio
#   versions_file OUT ARCH SCRIPTNAME KERNELFILE
#                                        the VERSIONS text for debs[]

lib_apt=$(readlink -f "${BASH_SOURCE[0]}")
: "${tag:?set tag before sourcing lib-apt.sh}"
# Every sourced helper file: an output older than one of them is rebuilt.
guest_libs=("$lib_apt")

log() { echo "$tag: $*" >&2; }
die() { log "error: $*"; exit 1; }

guest_fresh() {
    local script=$1 outdir=$2 f lib
    shift 2
    [ "${PETREL_GUEST_REBUILD:-0}" != 1 ] || return 1
    for f in "$@"; do
        [ "$outdir/$f" -nt "$script" ] || return 1
        for lib in "${guest_libs[@]}"; do
            [ "$outdir/$f" -nt "$lib" ] || return 1
        done
    done
    return 0
}

guest_check_tools() {
    local tool
    for tool in apt-get apt-cache dpkg-deb cpio gzip xz zstd; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool not found (run: scripts/deps.sh guest)"
    done
    # depmod (kmod) is in /usr/sbin, often not in a user's PATH.
    depmod=$(PATH=$PATH:/usr/sbin:/sbin command -v depmod) ||
        die "depmod not found (run: scripts/deps.sh guest)"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || die "$keyring missing (run: scripts/deps.sh guest)"
}

# The one kernel file in an extracted kernel package: boot_kernel ROOT GLOB
boot_kernel() {
    # shellcheck disable=SC2206 # $2 is a glob on purpose
    local kernels=("$1"/boot/$2)
    if [ ${#kernels[@]} -ne 1 ] || [ ! -f "${kernels[0]}" ]; then
        die "expected exactly one /boot/$2 in ${1##*/}"
    fi
    echo "${kernels[0]}"
}

# The busybox binary of an extracted busybox-static package.
busybox_binary() {
    local b="$1/usr/bin/busybox"
    [ -f "$b" ] || b="$1/bin/busybox"
    [ -f "$b" ] || die "no busybox in busybox-static"
    echo "$b"
}

apt_setup() {
    local arch=$2
    apt_dir=$1
    apt_arch=$arch
    apt_mirror=$3
    apt_suite=$4
    mkdir -p "$apt_dir"/{etc,state/lists/partial,cache/archives/partial,debs}
    apt_dir=$(readlink -f "$apt_dir")
    echo "deb [arch=$arch signed-by=$keyring] $apt_mirror $apt_suite main" \
        >"$apt_dir/etc/sources.list"
    : >"$apt_dir/state/status"         # an empty dpkg database: nothing installed
    apt_opts=(
        -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
        -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$apt_dir/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
        -o "Dir::State=$apt_dir/state"
        -o "Dir::State::status=$apt_dir/state/status"
        -o "Dir::Cache=$apt_dir/cache"
        -o "Dir::Cache::pkgcache=$apt_dir/cache/pkgcache.bin"
        -o "Dir::Cache::srcpkgcache=$apt_dir/cache/srcpkgcache.bin"
        -o "APT::Architecture=$arch"
        -o "APT::Architectures=$arch"
        -o Debug::NoLocking=1
        -o APT::Sandbox::User=root
        -o Acquire::Languages=none
        -q
    )
    mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/etc/preferences.d"
}

apt_update() {
    log "apt-get update ($apt_suite $apt_arch)"
    if ! apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1; then
        if compgen -G "$apt_dir/state/lists/*_Packages*" >/dev/null; then
            log "apt-get update failed; using the package lists from the last update"
            sed 's/^/  /' "$apt_dir/update.log" >&2
        else
            cat "$apt_dir/update.log" >&2
            die "apt-get update failed and there are no cached package lists"
        fi
    fi
}

# A meta package (linux-image-riscv64, linux-image-cloud-amd64) depends on
# the real, versioned kernel package: print its name.
apt_real_dep() {
    local meta=$1 re=$2 pkg
    pkg=$(apt-cache "${apt_opts[@]}" depends "$meta" |
          awk -v re="$re" '$1 == "Depends:" && $2 ~ re { print $2; exit }')
    [ -n "$pkg" ] || die "cannot resolve the dependency of $meta"
    echo "$pkg"
}

# The packages PKG... and everything they depend on (Depends and
# Pre-Depends, recursively), one a line, each once, in apt-cache's order:
# what apt would install on an empty system.  Virtual packages are left
# out (rootfs_programs finds the libraries a program needs among these
# packages, and says so when one is missing).
apt_depends() {
    local out
    out=$(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
              --no-conflicts --no-breaks --no-replaces --no-enhances "$@") ||
        die "apt-cache depends $* failed"
    awk '/^[^ <]/ { sub(/:.*/, ""); if (!($0 in seen)) { seen[$0] = 1; print } }' <<<"$out"
}

apt_fetch() {
    local p ver deb f
    debs=()
    for p in "$@"; do
        ver=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$p" |
              awk '$1 == "Version:" { print $2; exit }')
        [ -n "$ver" ] || die "no version of $p in $apt_suite"
        deb=""
        for f in "$apt_dir"/debs/"${p}"_*.deb; do
            [ -e "$f" ] || continue
            if [ "$(dpkg-deb -f "$f" Version 2>/dev/null)" = "$ver" ]; then deb=$f; break; fi
        done
        if [ -z "$deb" ]; then
            rm -f "$apt_dir"/debs/"${p}"_*.deb
            log "downloading $p $ver"
            (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download "$p=$ver") ||
                die "apt-get download $p=$ver failed"
            for f in "$apt_dir"/debs/"${p}"_*.deb; do deb=$f; done
            [ -e "$deb" ] || die "downloaded $p but found no .deb"
        fi
        debs+=("$deb")
    done
}

apt_extract() {
    local dir=$1 i
    shift
    local pkgs=("$@")
    rm -rf "$dir"
    mkdir -p "$dir"
    for i in "${!pkgs[@]}"; do
        mkdir -p "$dir/${pkgs[$i]}"
        dpkg-deb -x "${debs[$i]}" "$dir/${pkgs[$i]}"
    done
}

# --- What both the initramfs and the root disk run at boot -------------------
#
# guest_net_files DIR        udhcpc's script, /usr/share/udhcpc/default.script
#                            (also /etc/udhcpc/default.script, busybox's
#                            default path), and /etc/resolv.conf, a link to
#                            /run/resolv.conf, which the script writes
# guest_power_files DIR init|force
#                            busybox acpid's /etc/acpid.conf and the power
#                            button's action /etc/acpi/poweroff: busybox
#                            poweroff through init (rcK runs), or -f
# guest_net_start [OPT...]   prints the boot script's part that brings the
#                            network up: udhcpc OPT... per card
# guest_power_start          prints the part that starts acpid

guest_net_files() {
    local dir=$1
    mkdir -p "$dir/usr/share/udhcpc" "$dir/etc/udhcpc"
    cat >"$dir/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc's script in the Petrel default guest (busybox udhcpc -s FILE; also
# /etc/udhcpc/default.script, the default).  udhcpc runs it with $1 =
# deconfig, bound, renew, leasefail or nak, and the lease in the
# environment: $interface $ip $mask $broadcast $router $dns $domain $search
# $mtu.
#   bound, renew  set the address, a default route through the first router
#                 (metric 100 + the card's ifindex, so that two cards' routes
#                 don't replace each other) and the DNS servers: /run/resolv.conf
#                 (/etc/resolv.conf leads there) lists those of every lease
#   deconfig      removes what this script set for the card before, and only
#                 that: an address or route given by hand stays
# What it set is remembered in /run/udhcpc/<interface>.{ip,router,dns,search}.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
dir=/run/udhcpc
st=$dir/$interface
mkdir -p "$dir"

resolv() {
    cat "$dir"/*.search "$dir"/*.dns >/run/resolv.conf.new 2>/dev/null
    mv -f /run/resolv.conf.new /run/resolv.conf
}

forget_route() {
    local r
    [ -r "$st.router" ] || return 0
    read -r r <"$st.router"
    ip route del default via "$r" dev "$interface" 2>/dev/null
    rm -f "$st.router"
}

forget() {
    local a
    if [ -r "$st.ip" ]; then
        read -r a <"$st.ip"
        ip addr del "$a" dev "$interface" 2>/dev/null
    fi
    forget_route
    rm -f "$st.ip" "$st.dns" "$st.search"
}

case $1 in
    deconfig)
        forget
        resolv
        ip link set "$interface" up
        ;;
    bound|renew)
        new=$ip/${mask:-24}
        old=
        [ ! -r "$st.ip" ] || read -r old <"$st.ip"
        [ "$old" = "$new" ] || forget
        [ -z "$mtu" ] || ip link set "$interface" mtu "$mtu"
        # On renew the address is there already: that error is no error.
        ip addr add "$new" ${broadcast:+broadcast $broadcast} dev "$interface" 2>/dev/null
        echo "$new" >"$st.ip"
        set -- $router
        old=
        [ ! -r "$st.router" ] || read -r old <"$st.router"
        [ "$old" = "$1" ] || forget_route
        if [ -n "$1" ]; then
            read -r idx <"/sys/class/net/$interface/ifindex"
            ip route replace default via "$1" dev "$interface" metric $((100 + idx)) &&
                echo "$1" >"$st.router"
        fi
        : >"$st.dns"
        for s in $dns; do
            echo "nameserver $s" >>"$st.dns"
        done
        if [ -n "$search$domain" ]; then
            echo "search ${search:-$domain}" >"$st.search"
        else
            rm -f "$st.search"
        fi
        resolv
        ;;
esac
exit 0
EOF
    chmod 0755 "$dir/usr/share/udhcpc/default.script"
    ln -sfn ../../usr/share/udhcpc/default.script "$dir/etc/udhcpc/default.script"
    ln -sfn ../run/resolv.conf "$dir/etc/resolv.conf"
}

guest_power_files() {
    local dir=$1 how=$2
    mkdir -p "$dir/etc/acpi"
    cat >"$dir/etc/acpid.conf" <<'EOF'
# busybox acpid's action file: KEY ACTION, one a line.  An input event that
# acpid's map (compiled in: there is no /etc/acpi.map) describes with a
# text containing KEY runs ACTION, a program (or a directory, for
# run-parts) in /etc/acpi.  The power key (KEY_POWER pressed) is
# "button/power PWRF 00000080".
PWRF poweroff
EOF
    chmod 0644 "$dir/etc/acpid.conf"
    case $how in
        init)
            # busybox's poweroff itself: it asks init (SIGUSR2) to run
            # /etc/init.d/rcK and power off.  A program, not a script: acpid
            # runs it with every descriptor it holds still open.
            ln -sfn ../../usr/bin/poweroff "$dir/etc/acpi/poweroff" ;;
        force)
            # PID 1 is a shell, which ignores poweroff's signal: -f (sync,
            # then power off at once).
            printf '%s\n' '#!/bin/sh' '# The power button (busybox acpid, /etc/acpid.conf).' \
                'exec /bin/poweroff -f' >"$dir/etc/acpi/poweroff"
            chmod 0755 "$dir/etc/acpi/poweroff" ;;
        *) die "guest_power_files: init or force, not $how" ;;
    esac
}

# shellcheck disable=SC2120  # the root disk passes -S, the initramfs nothing
guest_net_start() {
    local opts="$*"
    cat <<EOF
# The network: the loopback, then every Ethernet card up, each with a udhcpc
# in the background (/usr/share/udhcpc/default.script sets the lease), so
# the boot never waits for DHCP: without an answer udhcpc keeps asking, 3
# tries 3 s apart every 20 s.
ip link set lo up
read -r host </proc/sys/kernel/hostname
for net in /sys/class/net/*; do
    [ -r "\$net/type" ] || continue
    read -r type <"\$net/type"
    [ "\$type" = 1 ] || continue            # ARPHRD_ETHER
    net=\${net##*/}
    ip link set "\$net" up
    udhcpc -f -i "\$net" -s /usr/share/udhcpc/default.script -p "/run/udhcpc.\$net.pid" \\
        -x "hostname:\$host"${opts:+ $opts} </dev/null >/dev/null 2>&1 &
done
unset net type host
EOF
}

guest_power_start() {
    cat <<'EOF'
# The power button: busybox acpid reads the input devices there are at its
# start (the virtio_input and evdev modules are loaded) and runs
# /etc/acpi/poweroff on KEY_POWER (see /etc/acpid.conf).  Without an input
# device (no virtio-keyboard) there is no button, and no acpid.
[ ! -e /dev/input/event0 ] || acpid
EOF
}

# The initramfs tree: static busybox, symlinks for its common applets, and an
# /init that mounts the pseudo file systems, loads the kernel modules listed
# in /lib/modules/<release>/load-order (see initramfs_modules), prints a
# banner and the kernel release, and runs a shell on the console.  Without
# a root disk it also brings the network up (DHCP, in the background) and
# starts acpid for the power button, whose action is `poweroff -f` there:
# the shell is PID 1, so nothing stops processes or unmounts, and a plain
# poweroff would do nothing.
initramfs_stage() {
    local stage=$1 busybox=$2 arch=$3 script=$4
    rm -rf "$stage"
    mkdir -p "$stage"
    (
        umask 022
        cd "$stage" || exit 1
        mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys run mnt var/log root tmp lib
        chmod 1777 tmp
        chmod 0700 root
        install -m 0755 "$busybox" bin/busybox

        # Applets linked at build time (a foreign busybox can't run on the
        # host); /init runs `busybox --install -s` at boot for the rest.
        applets='sh ash ls cat echo mount umount mkdir uname poweroff reboot halt
            dmesg ps top free df du cp mv rm ln grep sed awk head tail wc sleep date
            hostname ifconfig ip ping vi more less find xargs sort uniq tr cut
            md5sum sha256sum dd hexdump od sync true false test [ [[ env printenv
            id whoami chmod chown stat touch basename dirname readlink realpath
            mknod setsid cttyhack getty login clear reset stty tty which expr seq
            yes kill killall pidof nproc uptime watch insmod modprobe lsmod rmmod
            switch_root'
        for a in $applets; do
            ln -s busybox "bin/$a"
        done

        # Three parts; in the unquoted ones only $arch and $script expand.
        cat >init <<EOF
#!/bin/sh
# Petrel default $arch guest init (images/$script).
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
EOF
        cat >>init <<'EOF'
kmods=/lib/modules/$(uname -r)
# insmod the modules in the list $1 (see initramfs_modules in lib-apt.sh):
# .ko files, or .ko.xz ones the kernel decompresses.  One that fails to
# load (say one built into this kernel) is reported, and the boot goes on.
load_modules() {
    local kmod
    [ -r "$1" ] || return 0
    while read -r kmod; do
        [ -n "$kmod" ] || continue
        if ! insmod "$kmods/$kmod" >/dev/null 2>&1; then
            kmod=${kmod##*/}
            echo "petrel-init: insmod ${kmod%%.ko*} failed"
        fi
    done <"$1"
}
load_modules "$kmods/load-order"
# A virtio-gpu (PCI 1af4:1050, petrel run --vnc): load its DRM modules
# (load-order.gpu), and the kernel's fbcon shows on it; a boot without one
# doesn't pay for them.  A shell on tty1 follows at the end.
gpu=''
for dev in /sys/bus/pci/devices/*; do
    [ -r "$dev/device" ] || continue
    read -r v <"$dev/vendor"
    read -r d <"$dev/device"
    [ "$v:$d" != 0x1af4:0x1050 ] || gpu=1
done
unset dev v d
[ -z "$gpu" ] || load_modules "$kmods/load-order.gpu"

# A root disk: with root=/dev/NAME (or LABEL=... or UUID=..., through
# busybox findfs) on the kernel command line, load the modules to mount it
# (load-order.rootfs: ext4 and what it needs, where those are modules; a
# boot without root= doesn't pay for them), wait for the device
# (rootdelay=SECONDS, default 10), mount it (rootfstype=, rootflags=, ro or
# rw: default rw) and switch_root into it, running its init (init=PATH,
# default /sbin/init).  Whatever goes wrong is said on the console, and the
# boot goes on to the initramfs shell below: never a kernel panic.
root='' rootfstype='' rootflags='' rootmode=rw rootdelay=10 rootinit=/sbin/init
set -f
for arg in $(cat /proc/cmdline); do
    case $arg in
        root=*) root=${arg#*=} ;;
        rootfstype=*) rootfstype=${arg#*=} ;;
        rootflags=*) rootflags=${arg#*=} ;;
        rootdelay=*) rootdelay=${arg#*=} ;;
        init=*) rootinit=${arg#*=} ;;
        ro|rw) rootmode=$arg ;;
    esac
done
set +f
root_fail() {
    echo "petrel-init: $*"
    echo "petrel-init: staying in the initramfs (the root disk is not used)"
}
mount_root() {
    local n=0 opts=$rootmode${rootflags:+,$rootflags} m dev=$root
    case $root in
        /dev/?*|LABEL=?*|UUID=?*) ;;
        *) root_fail "root=$root is not supported: give a device node (root=/dev/vda)," \
               "LABEL= or UUID="
           return 1 ;;
    esac
    case $rootdelay in ''|*[!0-9]*) rootdelay=10 ;; esac
    load_modules "$kmods/load-order.rootfs"
    # Drivers create their device nodes (devtmpfs) as they bind, mostly
    # while insmod runs; a slow one gets rootdelay seconds.
    while :; do
        case $root in /dev/*) ;; *) dev=$(findfs "$root" 2>/dev/null) ;; esac
        [ ! -b "$dev" ] || break
        if [ "$n" -ge $((rootdelay * 10)) ]; then
            m=$(ls /sys/class/block 2>/dev/null | tr '\n' ' ')
            m=${m% }
            root_fail "root device $root did not appear within $rootdelay s" \
                "(block devices: ${m:-none})"
            return 1
        fi
        [ "$n" != 0 ] || echo "petrel-init: waiting up to $rootdelay s for $root"
        sleep 0.1
        n=$((n + 1))
    done
    [ "$dev" = "$root" ] || echo "petrel-init: $root is $dev"
    mkdir -p /newroot
    if ! mount ${rootfstype:+-t "$rootfstype"} -o "$opts" "$dev" /newroot; then
        root_fail "cannot mount $dev${rootfstype:+ as $rootfstype} (options $opts)"
        return 1
    fi
    # An absolute symlink would resolve in the initramfs: accept any link.
    if [ ! -e "/newroot$rootinit" ] && [ ! -L "/newroot$rootinit" ]; then
        umount /newroot
        root_fail "$dev has no $rootinit (init=PATH names another)"
        return 1
    fi
    echo "petrel-init: root $dev mounted ($opts), starting its $rootinit"
    umount /tmp
    # The pseudo file systems go along (or away, if the root has no
    # directory for them).
    for m in /run /sys /proc /dev; do
        if [ -d "/newroot$m" ]; then
            mount --move "$m" "/newroot$m" || umount -l "$m"
        else
            umount -l "$m"
        fi
    done
    exec switch_root /newroot "$rootinit"
}
[ -z "$root" ] || mount_root
unset kmods root rootfstype rootflags rootmode rootdelay rootinit arg
EOF
        {
            echo 'hostname petrel'
            # shellcheck disable=SC2119
            guest_net_start
            guest_power_start
            cat <<'EOF'
# With a virtio-gpu, a second shell on its screen (tty1) unless the
# console (and so the shell below) is there already (console=tty0/tty1).
if [ -n "$gpu" ] && [ -c /dev/tty1 ]; then
    case " $(cat /proc/cmdline) " in
        *" console=tty0 "*|*" console=tty1 "*) ;;
        *) setsid -c /bin/sh -c 'echo "Welcome to Petrel"; uname -r; exec /bin/sh -l' \
               <>/dev/tty1 >&0 2>&1 & ;;
    esac
fi
unset gpu
EOF
            cat <<EOF
echo "Welcome to Petrel ($arch)"
uname -r
exec setsid cttyhack /bin/sh -l
EOF
        } >>init
        chmod 0755 init
        guest_net_files .
        guest_power_files . force

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
}

# Kernel modules for the default guests (initramfs_modules keeps those that
# are modules, =m, of the guest's kernel, and adds what they depend on):
# the virtio drivers, PCI transport, block, entropy, console and network ...
# shellcheck disable=SC2034  # used by images/build-*.sh
guest_modules_virtio=(
    virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
    virtio_blk rng_core virtio_rng virtio_console failover net_failover virtio_net
)
# ... the power button: a virtio-input keyboard (Petrel's virtio-keyboard)
# and evdev, whose /dev/input/event* busybox acpid reads (input-core is
# built into the riscv64 kernel; with no such device they load all the
# same, in 0.05 s) ...
# shellcheck disable=SC2034
guest_modules_input=(virtio_input evdev)
# ... the display: virtio-gpu and its DRM helpers, loaded (from
# load-order.gpu) only when the guest has a virtio-gpu; fbcon, the VT and
# fbdev emulation are built into the Debian kernels ...
# shellcheck disable=SC2034
guest_modules_gpu=(virtio_gpu)
# ... and ext4, to mount a virtio disk.  crc32c_generic is no symbol
# dependency: ext4 and jbd2 ask the crypto API for "crc32c" (a softdep) to
# check metadata checksums.
# shellcheck disable=SC2034
guest_modules_ext4=(crc16 mbcache jbd2 crc32c_generic ext4)

# Kernel modules for the initramfs: each MODULE (a module name; `-` and `_`
# alike) that is a module of this kernel, plus everything it depends on,
# decompressed, under DIR/lib/modules/<release>/ at its path in the
# package, with
#   load-order   the modules' paths there, one a line, dependencies first:
#                /init insmods them in this order at every boot
#   modules.dep  the dependency lines of the modules in all the lists (for
#                modprobe)
# With -l LIST the modules go to the list LIST instead of load-order, e.g.
# load-order.rootfs, which /init loads only to mount a root disk (root=);
# a module already in another list (a shared dependency) is not repeated.
# With -x they are stored xz-compressed again once their signature is
# gone (.ko.xz; busybox insmod hands them to the kernel, which decompresses
# them: CONFIG_MODULE_DECOMPRESS): the kernel then unpacks a smaller
# initramfs at every boot, and decompresses a module only to load it.  On
# the interpreted riscv64 guest, ext4 and its dependencies (8.4 MB, 0.7 MB
# xz'd) kept plain cost every boot about 0.45 s of CPU to unpack; xz'd, a
# boot that loads them takes about 1.3 s more.  (busybox insmod also reads
# gzip'd modules, itself, no faster, after the kernel has logged two errors
# refusing them.)
# A MODULE built into the kernel (in modules.builtin) is skipped; one that is
# neither built in nor a module is an error.  The package ships no
# modules.dep (its postinst runs depmod), so depmod makes one first (once per
# extracted package), reading no host configuration.
#
# The modules' signatures are removed.  The kernels check a signature when
# there is one (CONFIG_MODULE_SIG, not enforced), and on the interpreted
# riscv64 guest that is slow: an RSA check with crypto self-tests, 0.1-0.3 s
# a module, plus SHA-256 over the file, about 0.5 s a MB.  The riscv64 guest
# boots to its shell and powers off in 5.0 s with its unsigned virtio
# modules, 7.0 s with them signed, 4.4 s without them.  Unsigned, the kernel
# prints "module verification failed: signature and/or required key missing
# - tainting kernel" once and sets taint E; nothing else changes.
initramfs_modules() {
    local stage=$1 kroot=$2 mdir="" d kver base res rel ko out builtin="" list=load-order xz=0
    local order=()
    shift 2
    while [ $# -gt 0 ]; do
        case $1 in
            -l) list=$2; shift 2 ;;
            -x) xz=1; shift ;;
            *) break ;;
        esac
    done
    case $list in load-order*) ;; *) die "initramfs_modules: bad list name $list" ;; esac
    for d in "$kroot"/usr/lib/modules/* "$kroot"/lib/modules/*; do
        if [ -d "$d/kernel" ]; then
            [ -z "$mdir" ] || die "more than one module tree in $kroot"
            mdir=$d
        fi
    done
    [ -n "$mdir" ] || die "no lib/modules/<release>/kernel in $kroot"
    kver=${mdir##*/}
    [ -f "$mdir/modules.builtin" ] || die "no modules.builtin in $mdir"

    # depmod (kmod 30) reads BASE/lib/modules/<release>: point that at mdir.
    if [ ! -f "$mdir/modules.dep" ]; then
        base="$apt_dir/depmod"
        rm -rf "$base"
        mkdir -p "$base/lib/modules" "$base/depmod.d"
        ln -s "$mdir" "$base/lib/modules/$kver"
        "$depmod" -b "$base" -C "$base/depmod.d" "$kver" || die "depmod $kver failed"
        rm -rf "$base"
    fi

    # Depth first over modules.dep, dependencies before their users.  A
    # modules.dep line lists all (transitive) dependencies, the one to load
    # first last: visiting them from the end keeps modprobe's order.
    res=$(awk -v want="$*" '
        function norm(p,  n) {
            n = p; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n)
            gsub(/-/, "_", n); return n
        }
        function visit(n,  i, k, ds) {
            if (n in done) return
            done[n] = 1
            k = split(deps[n], ds, " ")
            for (i = k; i >= 1; i--) visit(norm(ds[i]))
            print "load", path[n]
        }
        FILENAME ~ /modules\.dep$/ {
            p = $1; sub(/:$/, "", p); n = norm(p)
            path[n] = p; $1 = ""; deps[n] = $0
            next
        }
        { builtin[norm($0)] = 1 }
        END {
            k = split(want, ws, " ")
            for (i = 1; i <= k; i++) {
                w = norm(ws[i])
                if (w in path) visit(w)
                else if (w in builtin) print "builtin", w
                else print "missing", w
            }
        }' "$mdir/modules.dep" "$mdir/modules.builtin") || die "resolving modules failed"
    while read -r d rel; do
        case $d in
            load) order+=("$rel") ;;
            builtin) builtin+=" $rel" ;;
            '') ;;
            *) die "$rel is neither a module nor built into kernel $kver" ;;
        esac
    done <<<"$res"
    [ -z "$builtin" ] || log "built into $kver, not added:$builtin"

    out="$stage/lib/modules/$kver"
    mkdir -p "$out"
    : >"$out/$list"
    for rel in "${order[@]}"; do
        ko=${rel%.ko*}.ko
        # Already in another list: loaded from there.
        if grep -qxF -e "$ko" -e "$ko.xz" "$out"/load-order*; then
            continue
        fi
        mkdir -p "$out/${rel%/*}"
        case $rel in
            *.ko.xz)  xz -dc "$mdir/$rel" >"$out/$ko" ;;
            *.ko.zst) zstd -dcq "$mdir/$rel" >"$out/$ko" ;;
            *.ko.gz)  gzip -dc "$mdir/$rel" >"$out/$ko" ;;
            *.ko)     cat "$mdir/$rel" >"$out/$ko" ;;
            *)        false ;;
        esac || die "cannot decompress $rel"
        modsig_strip "$out/$ko"
        if [ "$xz" = 1 ]; then
            # The kernel's decoder wants CRC32 and a 1 MiB dictionary at
            # most (scripts/Makefile.modinst); one thread: reproducible.
            xz -q -T1 --check=crc32 --lzma2=dict=1MiB "$out/$ko" || die "xz $ko failed"
            ko=$ko.xz
        fi
        echo "$ko" >>"$out/$list"
    done
    # modules.dep of the modules in all the lists, naming their files.
    cat "$out"/load-order* | awk '
        FILENAME == "-" {
            n = $0; if (sub(/\.xz$/, "", n)) isxz[n] = 1
            want[n] = 1; next
        }
        { gsub(/\.ko\.(xz|zst|gz)/, ".ko"); p = $1; sub(/:$/, "", p) }
        p in want {
            for (i = 1; i <= NF; i++) {
                p = $i; c = sub(/:$/, "", p)
                $i = p (p in isxz ? ".xz" : "") (c ? ":" : "")
            }
            print
        }
    ' - "$mdir/modules.dep" >"$out/modules.dep"
    find "$out" -type d -exec chmod 0755 {} +
    find "$out" -type f -exec chmod 0644 {} +
    log "modules ($kver, $list): $(sed 's|.*/||; s|\.ko\(\.xz\)\?$||' "$out/$list" | paste -sd ' ')"
}

# Drop a module's appended signature: PKCS#7 data, then struct
# module_signature (12 bytes, ending with the data's length, big endian),
# then the marker.  A module without one is left alone.
modsig_strip() {
    local f=$1 size n marker='~Module signature appended~'
    tail -c $((${#marker} + 1)) "$f" | cmp -s - <(echo "$marker") || return 0
    size=$(stat -c %s "$f")
    n=$(tail -c $((${#marker} + 1 + 4)) "$f" | head -c 4 | od -An -tu1 |
        awk '{ print (($1 * 256 + $2) * 256 + $3) * 256 + $4 }')
    if [ "$n" -le 0 ] || [ $((n + 12 + ${#marker} + 1)) -ge "$size" ]; then
        die "bad module signature in $f"
    fi
    truncate -s $((size - n - 12 - ${#marker} - 1)) "$f"
}

# Reproducible archive: fixed owner, mtimes and inode numbers, sorted names.
initramfs_pack() {
    local stage=$1 out=$2 epoch=${SOURCE_DATE_EPOCH:-0}
    find "$stage" -exec touch -h -d "@$epoch" {} +
    (cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
        cpio --null --quiet -o -H newc --owner=0:0 --reproducible) |
        gzip -9 -n >"$out"
}

versions_file() {
    local out=$1 arch=$2 script=$3 kernel=$4 d
    {
        echo "# Petrel default $arch guest, built $(date -u +%Y-%m-%dT%H:%M:%SZ) by images/$script"
        echo "# source: deb $apt_mirror $apt_suite main ($apt_arch)"
        for d in "${debs[@]}"; do
            echo "$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version) $(dpkg-deb -f "$d" Architecture)"
        done
        echo "kernel-file $(basename "$kernel")"
    } >"$out"
}
