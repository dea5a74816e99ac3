# shellcheck shell=bash
# Shared by the guest image builders (images/build-*.sh); sourced, not run.
#
# Debian packages through apt with a private configuration (its own sources
# list, state and cache under one directory), so the host's apt state is
# never touched, plus the busybox initramfs both default guests use.
#
# The caller sets `tag` (the prefix of log lines) before sourcing, then:
#   guest_fresh SCRIPT OUTDIR FILE...    0 if every output is newer than
#                                        SCRIPT and this file (and no
#                                        PETREL_GUEST_REBUILD=1)
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
#   initramfs_pack DIR OUT               reproducible gzip'd newc cpio
#   versions_file OUT ARCH SCRIPTNAME KERNELFILE
#                                        the VERSIONS text for debs[]

lib_apt=$(readlink -f "${BASH_SOURCE[0]}")
: "${tag:?set tag before sourcing lib-apt.sh}"

log() { echo "$tag: $*" >&2; }
die() { log "error: $*"; exit 1; }

guest_fresh() {
    local script=$1 outdir=$2 f
    shift 2
    [ "${PETREL_GUEST_REBUILD:-0}" != 1 ] || return 1
    for f in "$@"; do
        [ "$outdir/$f" -nt "$script" ] && [ "$outdir/$f" -nt "$lib_apt" ] || return 1
    done
    return 0
}

guest_check_tools() {
    local tool
    for tool in apt-get apt-cache dpkg-deb cpio gzip; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool not found (run: scripts/deps.sh guest)"
    done
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || die "$keyring missing (run: scripts/deps.sh guest)"
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

# The initramfs tree: static busybox, symlinks for its common applets, and an
# /init that mounts the pseudo file systems, prints a banner and the kernel
# release, and runs a shell on the console.
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
            yes kill killall pidof nproc uptime watch insmod modprobe lsmod rmmod'
        for a in $applets; do
            ln -s busybox "bin/$a"
        done

        # No $ or backquote in the script: only $arch and $script expand.
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
hostname petrel
echo "Welcome to Petrel ($arch)"
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
