#!/usr/bin/env python3
"""The native libraries inside the tool's package: only those a .NET tool can load.

    python3 tests/package/tool_natives.py PATH/Ossuary.Cli.VERSION.nupkg

`dotnet tool install` runs the tool on the .NET runtime of a desktop or server: Linux (glibc and
musl), macOS and Windows. libsodium's package also carries builds for Android, iOS, tvOS and Mac
Catalyst, which only an app built for those platforms loads; the tool must not carry them (they were
almost half of its package). The ones it runs on must all be there, or the tool fails on that
system at its first key. tests/package/check.sh runs this on the package it packed.

Exit status 0 if so, 1 otherwise (each problem on stderr).
"""
import re
import sys
import zipfile

NEEDED = ("linux-x64", "linux-arm64", "linux-musl-x64", "linux-musl-arm64", "osx-x64", "osx-arm64", "win-x64", "win-arm64")
MOBILE = re.compile(r"^(android|ios|iossimulator|tvos|tvossimulator|maccatalyst|browser)(-|$)")

with zipfile.ZipFile(sys.argv[1]) as package:
    names = package.namelist()
rids = {m.group(1) for m in (re.search(r"/runtimes/([^/]+)/native/", n) for n in names) if m}
errors = [f"carries native libraries for {rid}, which a .NET tool never loads" for rid in sorted(rids) if MOBILE.match(rid)]
errors += [f"carries no native library for {rid}, where the tool runs" for rid in NEEDED if rid not in rids]
for error in errors:
    print(f"package check: error: {sys.argv[1]}: {error}", file=sys.stderr)
sys.exit(1 if errors else 0)
