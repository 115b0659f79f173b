#!/bin/sh
# Install what the live inline test (tests/live) needs besides Suricata: ip (iproute2) for
# network namespaces and veth pairs, iptables-nft (iptables) for the NFQUEUE rule.
# Idempotent: does nothing when both are there.
set -eu
PATH="$PATH:/usr/sbin:/sbin"
if command -v ip >/dev/null && command -v iptables-nft >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q iproute2 iptables
iptables-nft -V
