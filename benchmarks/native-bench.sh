#!/usr/bin/env bash
# This project's C library (NativeAOT libossuary.so) next to the original's
# (../shared/interop/libossuary-0.5.2/libossuary.so): tests/native/bench.c, built once against each
# with that library's own header, run one after the other, printed side by side.
#
#   benchmarks/native-bench.sh [--skip-publish] [bench.c options: --connections N --seconds S]
#
# Publishes src/Ossuary.Native into artifacts/native first (the README's command) unless
# --skip-publish is given and artifacts/native/libossuary.so exists. Needs gcc.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
native="$root/artifacts/native"
original="$(cd "$root/../shared/interop/libossuary-0.5.2" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

publish=1
if [[ "${1:-}" == "--skip-publish" ]]; then
  publish=0
  shift
fi
if [[ $publish == 1 || ! -f "$native/libossuary.so" ]]; then
  dotnet publish "$root/src/Ossuary.Native" -c Release -r linux-x64 -o "$native" >&2
fi

cflags=(-Wall -Wextra -Werror -O1)
gcc "${cflags[@]}" -o "$work/bench-ours" "$root/tests/native/bench.c" \
  -I"$native" -L"$native" -lossuary -Wl,-rpath,"$native"
gcc "${cflags[@]}" -o "$work/bench-original" "$root/tests/native/bench.c" \
  -I"$original" -L"$original" -lossuary -Wl,-rpath,"$original"

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$work/bench-ours" --name ossuary-pipelines "$@" >"$work/ours.txt"
"$work/bench-original" --name libossuary-0.5.2 "$@" >"$work/original.txt"
echo "load average at end:   $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Both programs print the same figures in the same order: "figure value unit".
paste -d' ' "$work/ours.txt" "$work/original.txt" | awk '
  NR == 1 { printf "| %-20s | %18s | %18s | %-12s | %6s |\n", "figure", $2, $4, "unit", "ratio";
            printf "|%s|%s:|%s:|%s|%s:|\n", "----------------------", "-------------------", "-------------------", "--------------", "-------"; next }
  { ratio = ($5 + 0 != 0) ? sprintf("%.2fx", $2 / $5) : "";
    printf "| %-20s | %18s | %18s | %-12s | %6s |\n", $1, $2, $5, $3, ratio }'
