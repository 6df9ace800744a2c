#!/usr/bin/env bash
# Fuzzes one target of Ossuary.Pipelines with AFL++ and SharpFuzz.
#
#   tests/fuzz/run.sh TARGET SECONDS
#
# TARGET is frame, handshake-server, handshake-client or records (see README.md here).
# On a fresh machine this installs what it needs: the Debian package afl++ (with apt-get,
# as root, or through sudo) when afl-fuzz is missing, and the SharpFuzz.CommandLine tool
# from the repository's tool manifest (.config/dotnet-tools.json). It then builds the fuzz
# project in Release, instruments Ossuary.Pipelines.dll, writes the seed corpus from the
# test vectors, runs afl-fuzz for SECONDS and prints executions, paths and findings.
#
# Exit status: 0 when the run found no crash and no hang; 1 when it found any (they are in
# the findings directory printed at the end); 2 on a usage or setup error.
#
# Environment: OSSUARY_FUZZ_WORK (default tests/fuzz/.work) holds builds, corpora and
# findings, one folder per target; OSSUARY_FUZZ_TIMEOUT_MS (default 5000) is afl-fuzz -t;
# OSSUARY_VECTORS_DIR (default ../shared/vectors/ossuary-v1 beside the repository) the vectors.
set -euo pipefail

usage() {
    echo "usage: $0 TARGET SECONDS   (TARGET: frame, handshake-server, handshake-client, records)" >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
target="$1"
seconds="$2"
case "$target" in
    frame | handshake-server | handshake-client | records) ;;
    *) usage ;;
esac
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || usage

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$fuzz_dir/../.." && pwd)"
work_root="${OSSUARY_FUZZ_WORK:-$fuzz_dir/.work}"
work="$work_root/$target"
timeout_ms="${OSSUARY_FUZZ_TIMEOUT_MS:-5000}"
project="$fuzz_dir/Ossuary.Pipelines.Fuzz/Ossuary.Pipelines.Fuzz.csproj"

export DOTNET_NOLOGO=1
export DOTNET_CLI_TELEMETRY_OPTOUT=1

say() { echo "fuzz[$target]: $*"; }
die() { echo "fuzz[$target]: error: $*" >&2; exit 2; }

command -v dotnet >/dev/null 2>&1 || die "'dotnet' is not on PATH; install the .NET SDK pinned in global.json."

# The targets seed their sessions from the recorded vectors beside the repository (the work
# folder may be anywhere, so tell the binary where they are).
if [[ -z "${OSSUARY_VECTORS_DIR:-}" ]]; then
    OSSUARY_VECTORS_DIR="$(cd "$repo_root/.." && pwd)/shared/vectors/ossuary-v1"
fi
[[ -d "$OSSUARY_VECTORS_DIR" ]] || die "the test vectors are missing: expected $OSSUARY_VECTORS_DIR (or set OSSUARY_VECTORS_DIR)."
export OSSUARY_VECTORS_DIR

# 1. AFL++ (Debian package afl++). No silent skip: without afl-fuzz this fails.
if ! command -v afl-fuzz >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "afl-fuzz is missing and apt-get is not available to install the Debian package afl++."
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "afl-fuzz is missing; installing afl++ needs root (or sudo)."
        sudo=(sudo)
    fi
    say "installing the Debian package afl++"
    "${sudo[@]}" apt-get update -qq || die "apt-get update failed."
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq afl++ >/dev/null || die "apt-get install afl++ failed."
    command -v afl-fuzz >/dev/null 2>&1 || die "afl++ was installed but afl-fuzz is still not on PATH."
fi

# 2. SharpFuzz.CommandLine, a local tool pinned in .config/dotnet-tools.json.
(cd "$repo_root" && dotnet tool restore >/dev/null) || die "dotnet tool restore (SharpFuzz.CommandLine) failed."

mkdir -p "$work_root"

# 3. Build in Release. Several targets may run at once: one build at a time, then each target
#    instruments its own copy (sharpfuzz rewrites the assembly in place and refuses to do it twice).
(
    flock 9
    say "building the fuzz project (Release)"
    dotnet publish "$project" -c Release -o "$work_root/build" --nologo -v quiet >"$work_root/build.log" 2>&1 \
        || { cat "$work_root/build.log" >&2; exit 1; }
    rm -rf "$work/bin" "$work/plain"
    mkdir -p "$work"
    cp -r "$work_root/build" "$work/bin"
    cp -r "$work_root/build" "$work/plain"
) 9>"$work_root/build.lock" || die "the fuzz project does not build."

# bin/ gets the instrumented library (it only runs under afl-fuzz); plain/ stays as built, for
# writing seeds and replaying findings.
fuzz_dll="$work/bin/Ossuary.Pipelines.Fuzz.dll"
plain_dll="$work/plain/Ossuary.Pipelines.Fuzz.dll"

# 4. Instrument the library under test (only it: coverage is the protocol code's).
(cd "$repo_root" && dotnet tool run sharpfuzz "$work/bin/Ossuary.Pipelines.dll" >/dev/null) \
    || die "sharpfuzz could not instrument Ossuary.Pipelines.dll."

# 5. Seed corpus from the vectors' packets (the generator replays each seed and fails on a crash).
rm -rf "$work/corpus" "$work/findings"
dotnet "$plain_dll" --seeds "$target" "$work/corpus" || die "writing the seed corpus failed (does a seed crash?)."

# 6. afl-fuzz. dotnet itself is not instrumented (SharpFuzz reports coverage from the managed
#    code), hence AFL_SKIP_BIN_CHECK; the fork server's first start includes the .NET runtime's.
say "running afl-fuzz for ${seconds}s"
set +e
AFL_SKIP_CPUFREQ=1 \
AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
AFL_NO_UI=1 \
AFL_SKIP_BIN_CHECK=1 \
AFL_NO_AFFINITY=1 \
AFL_FORKSRV_INIT_TMOUT=60000 \
    timeout --kill-after=30 $((seconds + 120)) \
    afl-fuzz -i "$work/corpus" -o "$work/findings" -t "$timeout_ms" -m none -V "$seconds" \
    -- dotnet "$fuzz_dll" "$target" >"$work/afl.log" 2>&1
afl_status=$?
set -e

stats="$work/findings/default/fuzzer_stats"
if [[ ! -f "$stats" ]]; then
    tail -n 40 "$work/afl.log" >&2
    die "afl-fuzz exited with status $afl_status and wrote no fuzzer_stats."
fi

stat() { awk -F' *: *' -v key="$1" '$1 == key { print $2; found = 1 } END { if (!found) print "" }' "$stats"; }
first() { for v in "$@"; do [[ -n "$v" ]] && { echo "$v"; return; }; done; echo 0; }

execs="$(first "$(stat execs_done)")"
paths="$(first "$(stat corpus_count)" "$(stat paths_total)")"
crashes="$(first "$(stat saved_crashes)" "$(stat unique_crashes)")"
hangs="$(first "$(stat saved_hangs)" "$(stat unique_hangs)")"
run_time="$(first "$(stat run_time)")"
[[ "$run_time" -gt 0 ]] 2>/dev/null || run_time="$seconds"
rate="$(awk -v e="$execs" -v t="$run_time" 'BEGIN { printf "%.0f", (t > 0 ? e / t : 0) }')"

echo "fuzz[$target]: executions=$execs paths=$paths crashes=$crashes hangs=$hangs exec/s=$rate seconds=$run_time"
if [[ $afl_status -ne 0 ]]; then
    tail -n 40 "$work/afl.log" >&2
    echo "fuzz[$target]: error: afl-fuzz exited with status $afl_status" >&2
    exit 2
fi
if [[ "$crashes" -ne 0 || "$hangs" -ne 0 ]]; then
    echo "fuzz[$target]: FOUND $crashes crash(es) and $hangs hang(s): $work/findings/default/{crashes,hangs}" >&2
    echo "fuzz[$target]: replay with: dotnet $plain_dll --replay $target $work/findings/default/crashes/id*" >&2
    exit 1
fi
exit 0
