#!/usr/bin/env bash
# Installs the Debian packages the test suite needs where they are missing (as root, with apt-get):
#   gcc g++ binutils libc6-dev  the C library tests publish src/Ossuary.Native with NativeAOT and
#                               build C programs against it (ld, objcopy, ar, nm, readelf)
#   nats-server                 the telemetry sample's JetStream test starts its own nats-server -js
#   strace                      the CLI's durability test watches receive's fsync and rename calls
# .ci/run runs it before the tests; the tests that need nats-server or strace run it too when it is missing, so
# the README's `dotnet test` works on a fresh machine. Fails loudly where it cannot install.
set -euo pipefail

missing=()
if ! command -v gcc >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1 || ! command -v objcopy >/dev/null 2>&1; then
    missing+=(gcc g++ binutils libc6-dev)
fi
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    missing+=(nats-server)
fi

if ! command -v strace >/dev/null 2>&1 && [ ! -x /usr/bin/strace ]; then
    missing+=(strace)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
    echo "error: the tests need these Debian packages: ${missing[*]}; install them (apt-get as root)." >&2
    exit 1
fi

# One installer at a time (parallel test processes may both get here).
exec 9>/tmp/ossuary-install-prerequisites.lock
flock 9
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
