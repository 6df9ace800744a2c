#!/usr/bin/env bash
# The package check: what users of the packages get works, not only the project references
# inside the solution. From the repository root (or anywhere):
#
#   bash tests/package/check.sh
#
# 1. Packs the solution into a folder feed. Exactly Ossuary.Pipelines and Ossuary.Cli must come
#    out, each as VERSION.nupkg and VERSION.snupkg, VERSION being the one in Directory.Build.props,
#    with the licence expression, the README, the release notes (at most the 35,000 characters
#    the NuGet gallery takes: a longer changelog section is replaced by a pointer to CHANGELOG.md) and the
#    licence files inside,
#    and SECURITY.md, which each README sends its reader to, and the library's XML docs beside
#    its assembly (what an IDE shows); a package that carries third-party binaries (the tool) has
#    their licence notices in THIRD-PARTY-NOTICES.txt. The tool's package carries libsodium only
#    for the systems a .NET tool runs on (tool_natives.py).
# 2. Creates a web project outside the repository (`dotnet new web`), adds Ossuary.Pipelines
#    VERSION from the feed, makes the README's quick start its Program.cs (only the port changes,
#    to a free one; the package's README must show the same program), builds it with warnings as errors, and runs it: a Kestrel `UseOssuary` server
#    and a client against it, one round trip.
#    Every other C# block of the READMEs compiles against the package too (readme_snippets.py).
#    Then the same package in a console project without ASP.NET Core, so that the library runs on
#    exactly the lowest dependency versions its package asks for: they must be what is restored,
#    and an OssuaryStream server and the pipes client make a round trip on them.
#    Then a web project published with NativeAOT, trim and AOT warnings as errors (the library
#    says IsAotCompatible): its options bound from configuration, UseOssuary and the client's
#    connection factory make a round trip.
# 3. Installs the ossuary tool from its package (the feed its only source) into a folder and
#    runs `ossuary --version`, which must print VERSION, and `ossuary demo`.
#
# The consumer's restore uses the machine's own NuGet configuration (its sources) plus the folder
# feed, which a NuGet.config in the work folder adds; nothing else is named, and the check fails
# if the Ossuary.Pipelines it got is not the one just packed. Every restore goes to a packages
# folder of the check's own, so a package of the same version packed earlier is never served stale from the NuGet
# cache; packages the machine's cache already has are read from it (a fallback folder) rather
# than downloaded again.
#
# Exit status 0 when every step passed, 1 otherwise (the first failure says what and why).
# Environment: OSSUARY_PACKAGE_WORK (default: a temporary folder, removed at the end) holds the
# feed, the consumer project, the packages folder and the tool.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

export DOTNET_NOLOGO=1
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { echo "package check: $*"; }
fail() { echo "package check: error: $*" >&2; exit 1; }

command -v dotnet >/dev/null 2>&1 || fail "'dotnet' is not on PATH; install the .NET SDK pinned in global.json."
command -v python3 >/dev/null 2>&1 || fail "'python3' is not on PATH; it is needed to read the packages."

if [[ -n "${OSSUARY_PACKAGE_WORK:-}" ]]; then
    work="$OSSUARY_PACKAGE_WORK"
    rm -rf "$work"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
work="$(cd "$work" && pwd)"
case "$work/" in
    "$repo_root"/*) fail "the work folder $work is inside the repository; the consumer must be outside it." ;;
esac
feed="$work/feed"
mkdir -p "$feed"

# The machine's packages folder, asked before NUGET_PACKAGES points elsewhere.
machine_packages="$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: //p')"

# The version comes from Directory.Build.props (VersionPrefix), never the SDK's default 1.0.0.
read -r version version_prefix < <(dotnet msbuild src/Ossuary.Pipelines/Ossuary.Pipelines.csproj \
    -getProperty:PackageVersion -getProperty:VersionPrefix \
    | python3 -c 'import json, sys; p = json.load(sys.stdin)["Properties"]; print(p["PackageVersion"], p["VersionPrefix"])')
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || fail "could not read the package version (got '$version')."
[[ "$version_prefix" == "$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' Directory.Build.props)" && "$version" == "$version_prefix"* ]] \
    || fail "the package version $version does not come from Directory.Build.props' VersionPrefix ($version_prefix)."
say "version $version, work folder $work"

# 1. Pack. PackageOutputPath rather than -o, which a solution does not take.
say "packing the solution into $feed"
dotnet pack Ossuary.Pipelines.sln -c Release -p:PackageOutputPath="$feed" -nologo -v:q \
    || fail "dotnet pack of the solution failed."

python3 - "$feed" "$version" <<'PY' || fail "the packages are not what they should be (see above)."
import pathlib
import sys
import xml.etree.ElementTree as ET
import zipfile

feed, version = pathlib.Path(sys.argv[1]), sys.argv[2]
NUGET_ORG_MAX_RELEASE_NOTES = 35000
expected = {f"{pid}.{version}.{ext}" for pid in ("Ossuary.Pipelines", "Ossuary.Cli") for ext in ("nupkg", "snupkg")}
found = {p.name for p in feed.iterdir()}
errors = []
if found != expected:
    errors.append(f"the feed holds {sorted(found)}; expected exactly {sorted(expected)} "
                  "(a project that is not a package must set IsPackable to false)")

for pid in ("Ossuary.Pipelines", "Ossuary.Cli"):
    path = feed / f"{pid}.{version}.nupkg"
    if not path.exists():
        continue
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        nuspec = ET.fromstring(z.read(f"{pid}.nuspec"))
    meta = nuspec.find("{*}metadata")
    def text(tag):
        el = meta.find("{*}" + tag)
        return (el.text or "").strip() if el is not None else ""
    lic = meta.find("{*}license")
    if lic is None or lic.get("type") != "expression" or (lic.text or "").strip() != "Apache-2.0":
        errors.append(f"{path.name}: no licence expression Apache-2.0")
    readme = text("readme")
    if not readme or readme not in names:
        errors.append(f"{path.name}: no README inside (readme '{readme}')")
    # What the package's README tells its reader to read must be inside: a package user has no
    # repository to look in (the packages name none). Both READMEs send them to SECURITY.md, which
    # says what the protocol protects and how to report a vulnerability.
    for required in ("LICENSE", "NOTICE", "CHANGELOG.md", "SECURITY.md"):
        if required not in names:
            errors.append(f"{path.name}: {required} is missing")
    if readme in names:
        with zipfile.ZipFile(path) as z:
            if "SECURITY.md" not in z.read(readme).decode("utf-8"):
                errors.append(f"{path.name}: its README does not send the reader to SECURITY.md (how to report a vulnerability)")
    notes = text("releaseNotes")
    if not notes:
        errors.append(f"{path.name}: no release notes")
    # the NuGet gallery refuses a package whose release notes are longer than this: the push fails, and a
    # release cannot be published (the changelog's section grows with every change until then).
    elif len(notes) > NUGET_ORG_MAX_RELEASE_NOTES:
        errors.append(f"{path.name}: release notes of {len(notes):,} characters; the NuGet gallery takes at most "
                      f"{NUGET_ORG_MAX_RELEASE_NOTES:,}, so the package could not be pushed there")
    elif not notes.startswith("## [") and "CHANGELOG.md" not in notes:
        errors.append(f"{path.name}: release notes that are neither the changelog's section nor send the reader to CHANGELOG.md")
    if text("version") != version:
        errors.append(f"{path.name}: nuspec version {text('version')}, expected {version}")
    if "Ossuary.Pipelines contributors" not in text("authors"):
        errors.append(f"{path.name}: authors are '{text('authors')}'")
    if pid == "Ossuary.Pipelines" and f"lib/net10.0/{pid}.dll" not in names:
        errors.append(f"{path.name}: lib/net10.0/{pid}.dll is missing")
    # The XML docs beside the assembly are what an IDE shows a package user (summaries, exceptions):
    # without them every tooltip of the library is empty.
    if pid == "Ossuary.Pipelines":
        docs = f"lib/net10.0/{pid}.xml"
        if docs not in names:
            errors.append(f"{path.name}: {docs} is missing (GenerateDocumentationFile)")
        else:
            with zipfile.ZipFile(path) as z:
                members = {m.get("name") for m in ET.fromstring(z.read(docs)).iter("member")}
            for member in ("T:Ossuary.Pipelines.Integrations.OssuaryClient", "T:Ossuary.Pipelines.Integrations.OssuaryStream"):
                if member not in members:
                    errors.append(f"{path.name}: {docs} does not document {member}")
    if pid == "Ossuary.Cli" and not any(n.startswith("tools/net10.0/any/") and n.endswith("ossuary.dll") for n in names):
        errors.append(f"{path.name}: not a .NET tool (no tools/net10.0/any/ossuary.dll)")
    # Every third-party binary a package carries goes with its licence's notice (MIT and ISC ask
    # for it in all copies): THIRD-PARTY-NOTICES.txt must name each one.
    bundled = set()
    for n in names:
        base = n.rsplit("/", 1)[-1]
        stem, _, ext = base.rpartition(".")
        if ext in ("dll", "so", "dylib", "a") and not stem.lower().startswith("ossuary"):
            bundled.add(stem.removesuffix(".resources"))
    if bundled:
        if "THIRD-PARTY-NOTICES.txt" not in names:
            errors.append(f"{path.name}: carries {sorted(bundled)} but no THIRD-PARTY-NOTICES.txt")
        else:
            with zipfile.ZipFile(path) as z:
                notices = z.read("THIRD-PARTY-NOTICES.txt").decode("utf-8")
            for component in sorted(bundled):
                if component not in notices:
                    errors.append(f"{path.name}: THIRD-PARTY-NOTICES.txt has no notice for {component}")
    symbols = feed / f"{pid}.{version}.snupkg"
    if symbols.exists():
        with zipfile.ZipFile(symbols) as z:
            if not any(n.endswith(".pdb") for n in z.namelist()):
                errors.append(f"{symbols.name}: no .pdb inside")

for e in errors:
    print("package check: error: " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
say "the feed holds Ossuary.Pipelines and Ossuary.Cli $version (.nupkg and .snupkg) with licence, README and release notes"
python3 tests/package/tool_natives.py "$feed/Ossuary.Cli.$version.nupkg" \
    || fail "the tool's package carries the wrong native libraries (see above)."
say "the tool's package carries libsodium for Linux, macOS and Windows only"

# From here on, every restore goes to a packages folder of this check's own.
export NUGET_PACKAGES="$work/packages"

# 2. The consumer: a new web project, the package from the feed, the README's quick start.
consumer="$work/consumer"
dotnet new web --name QuickStart --output "$consumer" --no-restore >/dev/null \
    || fail "dotnet new web failed."
{
    echo '<?xml version="1.0" encoding="utf-8"?>'
    echo '<!-- Adds the folder feed to the machine'"'"'s own sources (no <clear />). -->'
    echo '<configuration>'
    echo '  <packageSources>'
    echo "    <add key=\"ossuary-package-check\" value=\"$feed\" />"
    echo '  </packageSources>'
    # The machine's cache may serve the third-party packages, but never an Ossuary package.
    if [[ -n "$machine_packages" && -d "$machine_packages" \
          && ! -e "$machine_packages/ossuary.pipelines/$version" && ! -e "$machine_packages/ossuary.cli/$version" ]]; then
        echo '  <fallbackPackageFolders>'
        echo "    <add key=\"machine-packages\" value=\"$machine_packages\" />"
        echo '  </fallbackPackageFolders>'
    fi
    echo '</configuration>'
} >"$consumer/NuGet.config"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
python3 - "$consumer/Program.cs" "$port" README.md src/Ossuary.Pipelines/README.md <<'PY' \
    || fail "could not take the quick start out of the READMEs (see above)."
import re
import sys

program, port, readmes = sys.argv[1], sys.argv[2], sys.argv[3:]

def quick_start(readme):
    text = open(readme, encoding="utf-8").read()
    marker = text.find("<!-- quick-start:")
    match = re.compile(r"```csharp\n(.*?)```", re.S).search(text, marker) if marker >= 0 else None
    if match is None:
        sys.exit(f"{readme} has no '<!-- quick-start:' marker followed by a csharp block.")
    return match.group(1)

# The repository's README and the package's show the same program: this one check covers both.
code = quick_start(readmes[0])
for other in readmes[1:]:
    if quick_start(other) != code:
        sys.exit(f"the quick start in {other} differs from the one in {readmes[0]}; keep them the same.")
if "7400" not in code:
    sys.exit("the quick start does not listen on port 7400 any more; update tests/package/check.sh")
open(program, "w", encoding="utf-8").write(code.replace("7400", port))
PY

(cd "$consumer" && dotnet add package Ossuary.Pipelines --version "$version") >"$work/add-package.log" 2>&1 \
    || { cat "$work/add-package.log" >&2; fail "could not add Ossuary.Pipelines $version from the feed to the consumer."; }
[[ -d "$NUGET_PACKAGES/ossuary.pipelines/$version" ]] \
    || fail "Ossuary.Pipelines $version was not restored into the check's packages folder."
cmp -s "$NUGET_PACKAGES/ossuary.pipelines/$version/ossuary.pipelines.$version.nupkg" "$feed/Ossuary.Pipelines.$version.nupkg" \
    || fail "the consumer restored an Ossuary.Pipelines $version that is not the one just packed."

say "building the README's quick start against the package (warnings are errors)"
dotnet build "$consumer" -c Release -warnaserror -nologo -v:q >"$work/consumer-build.log" 2>&1 \
    || { cat "$work/consumer-build.log" >&2; fail "the README's quick start does not build against the package."; }

say "running it: a Kestrel UseOssuary server on 127.0.0.1:$port and a client"
set +e
(cd "$consumer" && timeout 120 dotnet bin/Release/net10.0/QuickStart.dll) >"$work/consumer-run.log" 2>&1
run_status=$?
set -e
cat "$work/consumer-run.log"
[[ $run_status -eq 0 ]] || fail "the quick start exited with status $run_status (124: it hung for 120 s)."
grep -Eq '^server: device [0-9a-f]{64} connected$' "$work/consumer-run.log" \
    || fail "the server did not report the device's proven key."
grep -q '^client: echoed sensor=temp value=21.5$' "$work/consumer-run.log" \
    || fail "the client did not get its message back through the server."
say "the quick start made a round trip through Kestrel and UseOssuary"

# 2a. Every other C# block of the READMEs (HTTP over Ossuary, configuration, the sans-IO loop),
# taken out of the Markdown as it stands and compiled against the package with warnings as errors:
# each is the body of a method whose parameters are what its `<!-- snippet: ... -->` marker says
# the reader already has (tests/package/readme_snippets.py; a csharp block without a marker fails).
# The tests run copies of the recipes against real peers; this keeps the text itself compiling.
snippets="$work/snippets"
dotnet new web --name ReadmeSnippets --output "$snippets" --no-restore >/dev/null \
    || fail "dotnet new web failed."
cp "$consumer/NuGet.config" "$snippets/NuGet.config"
python3 tests/package/readme_snippets.py "$snippets" README.md src/Ossuary.Pipelines/README.md \
    || fail "the READMEs' C# blocks could not be taken out (see above)."
(cd "$snippets" && dotnet add package Ossuary.Pipelines --version "$version") >"$work/snippets-add-package.log" 2>&1 \
    || { cat "$work/snippets-add-package.log" >&2; fail "could not add Ossuary.Pipelines $version to the snippets project."; }
dotnet build "$snippets" -c Release -warnaserror -nologo -v:q >"$work/snippets-build.log" 2>&1 \
    || { grep -E 'error' "$work/snippets-build.log" | sort -u >&2 || cat "$work/snippets-build.log" >&2
         fail "a C# block of the READMEs does not compile against the package (README and line above)."; }
say "the READMEs' other C# blocks compile against the package"

# 2b. The dependency floors: a console project without the ASP.NET Core shared framework, so
# that the library runs on exactly the lowest versions its package asks for (a web project gets
# newer ones from the framework). It must restore each dependency at the nuspec's minimum and make
# a round trip: an OssuaryStream server on a TcpListener, the pipes client against it.
floors="$work/floors"
dotnet new console --name FloorCheck --output "$floors" --no-restore >/dev/null \
    || fail "dotnet new console failed."
cp "$consumer/NuGet.config" "$floors/NuGet.config"
cat >"$floors/Program.cs" <<'CS'
using System.Net;
using System.Net.Sockets;
using System.Text;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;

using var serverIdentity = OssuaryIdentity.Generate();
using var clientIdentity = OssuaryIdentity.Generate();
using var listener = new TcpListener(IPAddress.Loopback, 0);
listener.Start();
var clientDone = new TaskCompletionSource();

Task server = Task.Run(async () =>
{
    using TcpClient accepted = await listener.AcceptTcpClientAsync();
    var serverOptions = new OssuaryServerOptions { Identity = serverIdentity };
    serverOptions.AuthorizedClientKeys.Add(clientIdentity.PublicKey);
    await using var secure = new OssuaryStream(accepted.GetStream());
    await secure.AuthenticateAsServerAsync(serverOptions);
    byte[] buffer = new byte[64];
    int read = await secure.ReadAsync(buffer);
    await secure.WriteAsync(buffer.AsMemory(0, read));
    await secure.FlushAsync();
    await clientDone.Task;
});

var options = new OssuaryClientOptions { Identity = clientIdentity };
options.TrustedServerKeys.Add(serverIdentity.PublicKey);
await using (var connection = await OssuaryClient.ConnectAsync((IPEndPoint)listener.LocalEndpoint, options))
{
    await connection.Transport.Output.WriteAsync("floors"u8.ToArray());
    var echo = await connection.Transport.Input.ReadAtLeastAsync(6);
    Console.WriteLine($"floors: echoed {Encoding.UTF8.GetString(echo.Buffer)}");
    connection.Transport.Input.AdvanceTo(echo.Buffer.End);
}
clientDone.SetResult();
await server.WaitAsync(TimeSpan.FromSeconds(60));
CS
(cd "$floors" && dotnet add package Ossuary.Pipelines --version "$version") >"$work/floors-add-package.log" 2>&1 \
    || { cat "$work/floors-add-package.log" >&2; fail "could not add Ossuary.Pipelines $version to the floors project."; }
dotnet build "$floors" -c Release -warnaserror -nologo -v:q >"$work/floors-build.log" 2>&1 \
    || { cat "$work/floors-build.log" >&2; fail "the floors project does not build."; }
python3 - "$feed/Ossuary.Pipelines.$version.nupkg" "$floors/obj/project.assets.json" \
    "$floors/bin/Release/net10.0/FloorCheck.runtimeconfig.json" <<'PY' || fail "the floors project did not get the lowest dependency versions (see above)."
import json
import sys
import xml.etree.ElementTree as ET
import zipfile

nupkg, assets_path, runtimeconfig_path = sys.argv[1:]
with zipfile.ZipFile(nupkg) as z:
    nuspec = ET.fromstring(z.read("Ossuary.Pipelines.nuspec"))
floors = {d.get("id"): d.get("version").strip("[]() ").split(",")[0] for d in nuspec.findall(".//{*}dependency")}
if "Microsoft.AspNetCore.Connections.Abstractions" not in floors:
    sys.exit(f"package check: error: the nuspec's dependencies were not read (got {floors})")
resolved = {}
for key in json.load(open(assets_path))["libraries"]:
    name, _, ver = key.partition("/")
    resolved[name] = ver
errors = [f"{name}: floor {floor}, restored {resolved.get(name)}" for name, floor in sorted(floors.items()) if resolved.get(name) != floor]
frameworks = json.load(open(runtimeconfig_path))["runtimeOptions"]
names = [f["name"] for f in frameworks.get("frameworks", [frameworks.get("framework", {})])]
if names != ["Microsoft.NETCore.App"]:
    errors.append(f"the floors project runs on {names}, not on Microsoft.NETCore.App alone")
for e in errors:
    print("package check: error: " + e, file=sys.stderr)
if not errors:
    print("package check: restored at the floors: " + ", ".join(f"{n} {v}" for n, v in sorted(floors.items())))
sys.exit(1 if errors else 0)
PY
set +e
(cd "$floors" && timeout 120 dotnet bin/Release/net10.0/FloorCheck.dll) >"$work/floors-run.log" 2>&1
floors_status=$?
set -e
cat "$work/floors-run.log"
[[ $floors_status -eq 0 ]] || fail "the floors project exited with status $floors_status (124: it hung for 120 s)."
grep -q '^floors: echoed floors$' "$work/floors-run.log" \
    || fail "the floors project's client did not get its message back."
say "the library made a round trip on its lowest dependency versions, without ASP.NET Core"

# 2c. NativeAOT: the library says IsAotCompatible (so IsTrimmable), and the README says its options
# binding works under NativeAOT. Roslyn's analyzers, which the library's own build runs, miss some of
# what the trimmer finds (a generic argument in a field's type), so a web project publishes with
# PublishAot and warnings as errors, one line per warning, using what an AOT application of the
# library uses: named server options and the client's connection factory bound from configuration,
# key files, UseOssuary; the whole library is rooted, so every path of it is analysed. Then it runs:
# a Kestrel server and a client, one round trip.
aot="$work/aot"
dotnet new web --name AotCheck --output "$aot" --no-restore >/dev/null \
    || fail "dotnet new web failed."
cp "$consumer/NuGet.config" "$aot/NuGet.config"
cat >"$aot/Program.cs" <<'CS'
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

int port = int.Parse(args[0]);
string keys = Directory.CreateTempSubdirectory("ossuary-aot-check-").FullName;
try
{
    using (var generated = OssuaryIdentity.Generate()) OssuarySecretKeyFile.Write(Path.Combine(keys, "server.key"), generated);
    using (var generated = OssuaryIdentity.Generate()) OssuarySecretKeyFile.Write(Path.Combine(keys, "device.key"), generated);
    using var serverKey = OssuarySecretKeyFile.Read(Path.Combine(keys, "server.key"));
    using var deviceKey = OssuarySecretKeyFile.Read(Path.Combine(keys, "device.key"));

    var builder = WebApplication.CreateSlimBuilder(args);
    builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Ossuary:Devices:IdentityKeyFile"] = Path.Combine(keys, "server.key"),
        ["Ossuary:Devices:AuthorizedClientKeys:0"] = deviceKey.PublicKey.ToString(),
        ["Ossuary:Devices:HandshakeTimeout"] = "00:00:10",
        ["Ossuary:Client:IdentityKeyFile"] = Path.Combine(keys, "device.key"),
        ["Ossuary:Client:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
    });
    builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary:Devices"), "devices");
    builder.Services.AddOssuaryClient(builder.Configuration.GetSection("Ossuary:Client"));
    builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port,
        listen => listen.UseOssuary("devices").UseConnectionHandler<EchoHandler>()));
    await using var app = builder.Build();
    await app.StartAsync();

    var factory = app.Services.GetRequiredService<IConnectionFactory>();
    await using (var connection = await factory.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)))
    {
        await connection.Transport.Output.WriteAsync("native"u8.ToArray());
        var echo = await connection.Transport.Input.ReadAtLeastAsync(6);
        Console.WriteLine($"aot: echoed {Encoding.UTF8.GetString(echo.Buffer)}");
        connection.Transport.Input.AdvanceTo(echo.Buffer.End);
    }
    await app.StopAsync();
}
finally
{
    Directory.Delete(keys, recursive: true);
}

sealed class EchoHandler : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        Console.WriteLine($"aot: device {connection.Features.Get<IOssuaryConnectionFeature>()?.RemotePublicKey} connected");
        await connection.Transport.Input.CopyToAsync(connection.Transport.Output);
    }
}
CS
(cd "$aot" && dotnet add package Ossuary.Pipelines --version "$version") >"$work/aot-add-package.log" 2>&1 \
    || { cat "$work/aot-add-package.log" >&2; fail "could not add Ossuary.Pipelines $version to the NativeAOT project."; }
# The whole library is analysed, not only what this program reaches (as the trimming guide advises
# for testing a library): a warning on any other path would reach some application.
sed -i 's#</Project>#  <ItemGroup>\n    <TrimmerRootAssembly Include="Ossuary.Pipelines" />\n  </ItemGroup>\n</Project>#' "$aot/AotCheck.csproj"
grep -q '<TrimmerRootAssembly Include="Ossuary.Pipelines" />' "$aot/AotCheck.csproj" \
    || fail "could not root Ossuary.Pipelines in the NativeAOT project."
say "publishing it with NativeAOT (trim and AOT warnings are errors)"
rid="$(dotnet --info | sed -n 's/^ *RID: *//p' | head -n 1)"
[[ -n "$rid" ]] || fail "could not read the machine's runtime identifier from 'dotnet --info'."
dotnet publish "$aot" -c Release -r "$rid" -p:PublishAot=true -p:TreatWarningsAsErrors=true -p:TrimmerSingleWarn=false \
    -o "$aot/published" -nologo -v:q >"$work/aot-publish.log" 2>&1 \
    || { grep -E 'warning|error' "$work/aot-publish.log" >&2 || cat "$work/aot-publish.log" >&2
         fail "the library is not trim- and AOT-safe as its package says (IsAotCompatible): the NativeAOT publish failed (see above)."; }
aot_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
set +e
(cd "$aot" && timeout 120 published/AotCheck "$aot_port") >"$work/aot-run.log" 2>&1
aot_status=$?
set -e
grep '^aot: ' "$work/aot-run.log" || true
[[ $aot_status -eq 0 ]] || { cat "$work/aot-run.log" >&2; fail "the NativeAOT project exited with status $aot_status (124: it hung for 120 s)."; }
grep -q '^aot: echoed native$' "$work/aot-run.log" \
    || { cat "$work/aot-run.log" >&2; fail "the NativeAOT project's client did not get its message back."; }
say "the library published with NativeAOT without a warning and made a round trip through UseOssuary"

# 3. The tool, installed from its package.
# A tool package carries all it needs, so the feed is its only source: no other source can
# answer for Ossuary.Cli.
tool_dir="$work/tool"
cat >"$work/tool-nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="ossuary-package-check" value="$feed" />
  </packageSources>
</configuration>
CONFIG
(cd "$work" && dotnet tool install Ossuary.Cli --tool-path "$tool_dir" --configfile "$work/tool-nuget.config" --version "$version") \
    >"$work/tool-install.log" 2>&1 \
    || { cat "$work/tool-install.log" >&2; fail "dotnet tool install of Ossuary.Cli $version from the feed failed."; }
tool_version="$("$tool_dir/ossuary" --version)" || fail "'ossuary --version' failed."
[[ "$tool_version" == "$version" || "$tool_version" == "$version+"* ]] \
    || fail "'ossuary --version' printed '$tool_version', expected $version."
say "the installed tool says 'ossuary --version' = $tool_version"

# `--version` loads no native code: the demo (the README's main job) needs libsodium from the
# package's runtimes folder, a server and a client, a handshake and a clean close.
set +e
(cd "$work" && timeout 120 "$tool_dir/ossuary" demo) >"$work/tool-demo.log" 2>&1
demo_status=$?
set -e
[[ $demo_status -eq 0 ]] || { cat "$work/tool-demo.log" >&2; fail "'ossuary demo' from the installed tool exited with status $demo_status (124: it hung for 120 s)."; }
grep -q '^closed cleanly' "$work/tool-demo.log" \
    || { cat "$work/tool-demo.log" >&2; fail "'ossuary demo' from the installed tool did not close cleanly."; }
say "the installed tool ran 'ossuary demo'"

say "passed"
