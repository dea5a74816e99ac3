#!/usr/bin/env bash
# Bridged networking for Petrel VMs: a Linux bridge with persistent TAP
# interfaces that an unprivileged user's VMs attach to with
#   petrel run --device virtio-net,net=tap,ifname=TAP
#
#   scripts/mkbridge.sh up BRIDGE TAP [USER] [CIDR] [UPLINK]
#   scripts/mkbridge.sh down BRIDGE TAP
#
# up:   creates BRIDGE (if missing) and the TAP owned by USER (default: the
#       invoking user, $SUDO_USER under sudo), enslaves the TAP to the bridge
#       and brings both up.  CIDR (e.g. 192.168.100.1/24) gives the host an
#       address on the bridge, so the host and the VMs share a subnet (add a
#       DHCP server such as dnsmasq on the bridge, or configure guests
#       statically).  UPLINK (e.g. eth0) also enslaves a physical interface:
#       the VMs then sit on that LAN, as with VMware/VirtualBox "bridged";
#       move the host's address from UPLINK to BRIDGE yourself (this script
#       does not, so a remote session is not cut off).
# down: deletes the TAP, and the bridge once no interface is left on it.
# Needs root (CAP_NET_ADMIN) and iproute2.  Every step is shown.
set -euo pipefail

die() { echo "mkbridge.sh: $*" >&2; exit 1; }
run() { echo "+ $*" >&2; "$@"; }

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 3 ] || usage
cmd=$1 br=$2 tap=$3
command -v ip >/dev/null || die "ip (iproute2) not found"
[ "$(id -u)" -eq 0 ] || die "needs root (try sudo)"
for n in "$br" "$tap"; do
    [[ "$n" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "bad interface name '$n'"
done

case "$cmd" in
up)
    user=${4:-${SUDO_USER:-$(id -un)}}
    cidr=${5:-}
    uplink=${6:-}
    id "$user" >/dev/null 2>&1 || die "no such user '$user'"
    if ! ip link show "$br" >/dev/null 2>&1; then
        run ip link add name "$br" type bridge
    fi
    if ! ip link show "$tap" >/dev/null 2>&1; then
        run ip tuntap add dev "$tap" mode tap user "$user"
    fi
    run ip link set "$tap" master "$br"
    run ip link set "$tap" up
    if [ -n "$uplink" ]; then
        ip link show "$uplink" >/dev/null 2>&1 || die "no interface '$uplink'"
        run ip link set "$uplink" master "$br"
    fi
    if [ -n "$cidr" ]; then
        ip -o addr show dev "$br" | grep -qw "${cidr%/*}" || run ip addr add "$cidr" dev "$br"
    fi
    run ip link set "$br" up
    echo "bridge $br with $tap (owner $user) is up; run:" >&2
    echo "  petrel run --device virtio-net,net=tap,ifname=$tap" >&2
    ;;
down)
    if ip link show "$tap" >/dev/null 2>&1; then
        run ip link del "$tap"
    fi
    if ip link show "$br" >/dev/null 2>&1 &&
        [ -z "$(ip -o link show master "$br")" ]; then
        run ip link del "$br"
    fi
    ;;
*)
    usage
    ;;
esac
