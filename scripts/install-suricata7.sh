#!/bin/sh
# Install Suricata 7.0.x and suricata-update on the host (Debian 12 from
# bookworm-backports, Debian 13 from the distribution). Idempotent.
set -eu
if command -v suricata >/dev/null && suricata -V | grep -q 'version 7\.0'; then
    exit 0
fi
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
if [ "$VERSION_CODENAME" = bookworm ]; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' \
        > /etc/apt/sources.list.d/bookworm-backports.list
    apt-get update -q
    apt-get install -y -q -t bookworm-backports suricata suricata-update
else
    apt-get update -q
    apt-get install -y -q suricata suricata-update
fi
# The package starts a service we do not want: the tests run their own engines.
systemctl disable --now suricata >/dev/null 2>&1 || true
suricata -V
