#!/usr/bin/env bash
# A release step (CONTRIBUTING.md, "Releasing"): moves the public API recorded in
# src/Ossuary.Pipelines/PublicAPI.Unshipped.txt into PublicAPI.Shipped.txt. A "*REMOVED*" line
# in Unshipped deletes its API from Shipped. Unshipped is left with only "#nullable enable".
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/src/Ossuary.Pipelines"
python3 - "$dir/PublicAPI.Shipped.txt" "$dir/PublicAPI.Unshipped.txt" <<'PY'
import sys

shipped_path, unshipped_path = sys.argv[1], sys.argv[2]
header = "#nullable enable"

def entries(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip() and line.strip() != header]

shipped = entries(shipped_path)
unshipped = entries(unshipped_path)
removed = {line[len("*REMOVED*"):] for line in unshipped if line.startswith("*REMOVED*")}
added = [line for line in unshipped if not line.startswith("*REMOVED*")]
result = sorted({line for line in shipped if line not in removed} | set(added), key=str.casefold)

with open(shipped_path, "w", encoding="utf-8", newline="\n") as f:
    f.write("\n".join([header, *result]) + "\n")
with open(unshipped_path, "w", encoding="utf-8", newline="\n") as f:
    f.write(header + "\n")
print(f"PublicAPI.Shipped.txt: {len(result)} entries ({len(added)} added, {len(removed)} removed).")
PY
