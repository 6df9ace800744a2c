#!/usr/bin/env bash
# This project's C library (NativeAOT libossuary.so) next to the original's
# (../shared/interop/libossuary-0.5.2/libossuary.so): tests/native/bench.c, built once against each
# with that library's own header, run one after the other, printed side by side.
#
#   benchmarks/native-bench.sh [--skip-publish] [--starts N] [bench.c options: --connections N --seconds S]
#
# Publishes src/Ossuary.Native into artifacts/native first (the README's command) unless
# --skip-publish is given and artifacts/native/libossuary.so exists. Needs gcc.
#
# The first ossuary_create_connection happens once per process, so one run is one sample of it:
# after the full runs, each program is started N more times (default 21, the two taking turns) with
# --only first_create, and the medians are the table's first_create.median rows.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
native="$root/artifacts/native"
original="$(cd "$root/../shared/interop/libossuary-0.5.2" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

publish=1
starts=21
bench_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --skip-publish) publish=0; shift ;;
    --starts) starts="$2"; shift 2 ;;
    *) bench_args+=("$1"); shift ;;
  esac
done
if [[ $publish == 1 || ! -f "$native/libossuary.so" ]]; then
  dotnet publish "$root/src/Ossuary.Native" -c Release -r linux-x64 -o "$native" >&2
fi

cflags=(-Wall -Wextra -Werror -O1)
gcc "${cflags[@]}" -o "$work/bench-ours" "$root/tests/native/bench.c" \
  -I"$native" -L"$native" -lossuary -Wl,-rpath,"$native"
gcc "${cflags[@]}" -o "$work/bench-original" "$root/tests/native/bench.c" \
  -I"$original" -L"$original" -lossuary -Wl,-rpath,"$original"

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$work/bench-ours" --name ossuary-pipelines "${bench_args[@]}" >"$work/ours.txt"
"$work/bench-original" --name libossuary-0.5.2 "${bench_args[@]}" >"$work/original.txt"

# figure NAME from FILE... -> the median of its values over the files, one per process start.
median() {
  local figure="$1"
  shift
  awk -v f="$figure" '$1 == f { print $2 }' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
if [[ $starts -gt 0 ]]; then
  for ((i = 0; i < starts; i++)); do
    "$work/bench-ours" --only first_create >"$work/ours.start.$i"
    "$work/bench-original" --only first_create >"$work/original.start.$i"
  done
  for side in ours original; do
    echo "first_create.median $(median first_create "$work/$side".start.*) us" >>"$work/$side.txt"
    echo "first_create.cpu.median $(median first_create.cpu "$work/$side".start.*) us" >>"$work/$side.txt"
  done
fi
echo "load average at end:   $(cut -d' ' -f1-3 /proc/loadavg)" >&2
[[ $starts -gt 0 ]] && echo "first_create.median rows: median of $starts process starts of each program, taking turns" >&2

# Both programs print the same figures in the same order: "figure value unit".
paste -d' ' "$work/ours.txt" "$work/original.txt" | awk '
  NR == 1 { printf "| %-24s | %18s | %18s | %-12s | %6s |\n", "figure", $2, $4, "unit", "ratio";
            printf "|%s|%s:|%s:|%s|%s:|\n", "--------------------------", "-------------------", "-------------------", "--------------", "-------"; next }
  { ratio = ($5 + 0 != 0) ? sprintf("%.2fx", $2 / $5) : "";
    printf "| %-24s | %18s | %18s | %-12s | %6s |\n", $1, $2, $5, $3, ratio }'
