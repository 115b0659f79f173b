#!/bin/sh
# Snort 3 for the pack's Snort 3 tests: Debian packages none, so the binary comes from
# SNORT3 (default ../shared/snort3/bin/snort, a build from the upstream sources; see its
# README). This installs the Debian runtime libraries it links against and checks that
# it runs. Idempotent. Without a binary: exit 1 under CI (CFP2P_REQUIRE_SNORT3), else a
# note (the Snort tests then skip with the same note).
set -eu
SNORT3=${SNORT3:-$(dirname "$0")/../../shared/snort3/bin/snort}
if [ ! -x "$SNORT3" ]; then
    echo "Snort 3 not found at $SNORT3: set SNORT3 to a Snort 3 binary (a build is in ../shared/snort3)" >&2
    [ -z "${CFP2P_REQUIRE_SNORT3:-}" ] || exit 1
    exit 0
fi
LIBS="libdumbnet1 libhwloc15 libluajit-5.1-2 libssl3 libpcap0.8 libpcre2-8-0 zlib1g libunwind8 liblzma5 libnuma1 libuuid1 libstdc++6"
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Status}\n' $LIBS 2>/dev/null | grep -c 'install ok installed' || true)
# shellcheck disable=SC2086
set -- $LIBS
if [ "$installed" -ne $# ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q $LIBS >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q $LIBS; }
fi
"$SNORT3" -V 2>&1 | grep -q 'Version 3\.' || { echo "$SNORT3 does not run: see ../shared/snort3/README.md" >&2; exit 1; }
"$SNORT3" -V 2>&1 | grep 'Version'
