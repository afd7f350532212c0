#!/bin/sh
# Install the Debian packages rdprobe's integration tests start as real servers (and chromium,
# the real browser the HTML report's test renders it in).
#
# Idempotent and non-interactive; run as root on Debian 12 (bookworm):
#     sudo scripts/install-debian-deps.sh          # fast path: exits at once if all present
#     RDPROBE_FORCE_APT=1 scripts/install-debian-deps.sh   # run apt-get even so
#
# While installing, a temporary /usr/sbin/policy-rc.d (exit 101) stops package scripts from
# starting xrdp, nginx, sshd...; it is removed afterwards only if this script created it.
set -eu

# package:binary pairs; a package is installed when its binary is missing.
PAIRS="
xrdp:xrdp
freerdp2-shadow-x11:freerdp-shadow-cli
winpr-utils:winpr-hash
xvfb:Xvfb
x11-utils:xdpyinfo
nginx-light:nginx
openssh-server:sshd
nftables:nft
tshark:tshark
tcpdump:tcpdump
iproute2:ip
nmap:nmap
parallel:parallel
openssl:openssl
chromium:chromium
"

PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export PATH

have() { command -v "$1" >/dev/null 2>&1; }

missing=""
for pair in $PAIRS; do
    pkg=${pair%%:*}
    bin=${pair#*:}
    if ! have "$bin" || [ "${RDPROBE_FORCE_APT:-0}" = 1 ]; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "install-debian-deps: all binaries present, nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-debian-deps: must run as root (missing:$missing)" >&2
    exit 1
fi
if ! have apt-get; then
    echo "install-debian-deps: apt-get not found; this script is for Debian" >&2
    exit 1
fi

DEBIAN_FRONTEND=noninteractive
export DEBIAN_FRONTEND

POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [ "$created_policy" = 1 ]; then
        rm -f "$POLICY"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# rdprobe install-debian-deps: no service starts during install\nexit 101\n' >"$POLICY"
    chmod 0755 "$POLICY"
    created_policy=1
fi

# tshark (wireshark-common) asks whether non-root users may capture: answer no.
if have debconf-set-selections; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" |
        debconf-set-selections
fi

echo "install-debian-deps: installing:$missing"
apt-get update -q
# shellcheck disable=SC2086  # word splitting of $missing is intended
apt-get install -y -q --no-install-recommends --no-upgrade \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing

# xrdp's Standard RDP Security keys (the package normally makes them).
if [ ! -e /etc/xrdp/rsakeys.ini ] && have xrdp-keygen; then
    xrdp-keygen xrdp auto
fi

still=""
for pair in $PAIRS; do
    bin=${pair#*:}
    have "$bin" || still="$still $bin"
done
if [ -n "$still" ]; then
    echo "install-debian-deps: still missing after install:$still" >&2
    exit 1
fi
echo "install-debian-deps: done"
