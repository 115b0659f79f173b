#!/bin/sh
# Build (once) a Debian 13 chroot holding Suricata 8.0.x and suricata-update
# from trixie-backports. Idempotent: does nothing when the chroot is complete.
set -eu
dir=${1:?usage: install-suricata8.sh DIR}
if [ -x "$dir/usr/bin/suricata" ] && [ -f "$dir/.complete" ]; then
    exit 0
fi
command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
rm -rf "$dir.tmp"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase trixie "$dir.tmp" http://deb.debian.org/debian
echo 'deb http://deb.debian.org/debian trixie-backports main' \
    > "$dir.tmp/etc/apt/sources.list.d/backports.list"
chroot "$dir.tmp" apt-get update -q
chroot "$dir.tmp" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends -t trixie-backports suricata suricata-update
chroot "$dir.tmp" apt-get clean
touch "$dir.tmp/.complete"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
