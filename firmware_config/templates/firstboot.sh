#!/bin/bash
# First boot of a loaxa node on Raspberry Pi OS (Bookworm), from its SD-card bundle.
#
# Run once as root when the Pi is on the network, from the folder the bundle was
# unpacked to (e.g. /boot/firmware/loaxa):  sudo bash /boot/firmware/loaxa/firstboot.sh
# It installs the system packages and loaxa[edge], sets up chrony, puts the node's
# config and credentials under /etc/loaxa (readable by the loaxa user only) and enables
# the agent's systemd unit. Running it again is harmless.
set -euo pipefail

BUNDLE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF_DIR=/etc/loaxa
VENV=/opt/loaxa/.venv
PIP_SPEC="${LOAXA_PIP_SPEC:-@PIP_SPEC@}"
NTP_SERVERS="${LOAXA_NTP_SERVERS:-@NTP_SERVERS@}"

if [[ $(id -u) -ne 0 ]]; then
    echo "run me as root: sudo bash $0" >&2
    exit 1
fi

echo "loaxa: system packages"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    python3-venv python3-pip ffmpeg espeak-ng alsa-utils chrony ca-certificates

echo "loaxa: the loaxa user"
if ! id -u loaxa >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/loaxa --shell /usr/sbin/nologin loaxa
fi
for group in audio gpio video; do
    if getent group "$group" >/dev/null; then
        usermod -a -G "$group" loaxa
    fi
done

echo "loaxa: config and credentials in $CONF_DIR"
install -d -m 0750 -o root -g loaxa "$CONF_DIR"
install -m 0640 -o root -g loaxa "$BUNDLE_DIR/node.yaml" "$CONF_DIR/node.yaml"
install -m 0640 -o root -g loaxa "$BUNDLE_DIR/mqtt.pass" "$CONF_DIR/mqtt.pass"
install -m 0640 -o root -g loaxa "$BUNDLE_DIR/client.key" "$CONF_DIR/client.key"
install -m 0644 -o root -g root "$BUNDLE_DIR/client.crt" "$CONF_DIR/client.crt"
install -m 0644 -o root -g root "$BUNDLE_DIR/ca.crt" "$CONF_DIR/ca.crt"
install -d -m 0700 -o loaxa -g loaxa /var/lib/loaxa

echo "loaxa: the agent ($PIP_SPEC)"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
shopt -s nullglob
wheels=("$BUNDLE_DIR"/loaxa-*.whl)
shopt -u nullglob
if [[ ${#wheels[@]} -gt 0 ]]; then
    "$VENV/bin/pip" install --quiet "${wheels[0]}[edge]"
else
    "$VENV/bin/pip" install --quiet "$PIP_SPEC"
fi

echo "loaxa: chrony (plays start together only on synchronised clocks)"
install -d /etc/chrony/conf.d
{
    echo "# written by loaxa firstboot.sh"
    for server in $NTP_SERVERS; do
        echo "pool $server iburst"
    done
    echo "makestep 1 3"
} > /etc/chrony/conf.d/loaxa.conf
if systemctl list-unit-files systemd-timesyncd.service >/dev/null 2>&1; then
    systemctl disable --now systemd-timesyncd.service || true
fi
systemctl enable --now chrony.service
systemctl restart chrony.service

echo "loaxa: the agent's unit"
install -m 0644 "$BUNDLE_DIR/loaxa-edge.service" /etc/systemd/system/loaxa-edge.service
systemctl daemon-reload
systemctl enable --now loaxa-edge.service
echo "loaxa: done; follow it with: journalctl -u loaxa-edge -f"
