#!/usr/bin/env python3
"""Turns the C# blocks of the READMEs into a project that must compile, so that an edit to a
README's code is checked as the quick start is.

    python3 tests/package/readme_snippets.py OUTPUT_DIR README.md src/Ossuary.Pipelines/README.md

Every ```csharp block needs a marker comment on one of the lines just above it:

    <!-- quick-start: ... -->             the full program; check.sh builds and runs it itself
    <!-- snippet: TYPE NAME, TYPE NAME -->  a fragment: it becomes the body of an async method
                                           whose parameters are what the text around it says
                                           the reader already has (`<!-- snippet: -->` for none)

A csharp block without a marker fails the check: whoever adds one says what it assumes. The
fragment's `using` directives move to the top of its file; the names the text leaves to the
reader (handlers, callbacks) are declared in Fills.cs below, and usings that an IDE would add
are global. Writes OUTPUT_DIR/Snippets/Snippet_<readme>_<line>.cs and OUTPUT_DIR/Snippets/Fills.cs;
exits 1 naming the README and line of a block it cannot place.
"""
import pathlib
import re
import sys

BLOCK = re.compile(r"```csharp\n(.*?)```", re.S)
MARKER = re.compile(r"<!--\s*(quick-start|snippet):?(.*?)-->", re.S)
# A using directive (not a using declaration such as `using var x = ...;`).
DIRECTIVE = re.compile(r"^using\s+(static\s+)?[A-Za-z_][\w.]*(\s*=\s*[\w.<>]+)?\s*;\s*(//.*)?$")

FILLS = """// The names the READMEs leave to the reader, declared so that the fragments compile.
global using System.Buffers;
global using System.IO.Pipelines;
global using System.Net;
global using System.Net.Sockets;
global using System.Text;
global using Microsoft.AspNetCore.Connections;
global using Microsoft.AspNetCore.Server.Kestrel.Core;
global using Ossuary.Pipelines;
global using Ossuary.Pipelines.Integrations;
global using Ossuary.Pipelines.Protocol;
global using Ossuary.Pipelines.Transport;
global using Ossuary.Pipelines.Trust;

namespace ReadmeSnippets;

public abstract class Fills
{
    protected static ValueTask<bool> MyAuditedCheckAsync(OssuaryPublicKey key, ConnectionContext? connection, CancellationToken cancellationToken) =>
        ValueTask.FromResult(false);
}

public sealed class DeviceHandler : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) => Task.CompletedTask;
}

public sealed class ConsoleHandler : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) => Task.CompletedTask;
}
"""


def main() -> int:
    out = pathlib.Path(sys.argv[1]) / "Snippets"
    out.mkdir(parents=True, exist_ok=True)
    (out / "Fills.cs").write_text(FILLS, encoding="utf-8")
    errors = []
    count = 0
    for readme in sys.argv[2:]:
        text = pathlib.Path(readme).read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            # The marker: the last HTML comment within the three lines above the block.
            above = text[: match.start()].split("\n")[-4:]
            markers = list(MARKER.finditer("\n".join(above)))
            if not markers:
                errors.append(f"{readme}:{line}: a csharp block without a '<!-- snippet: ... -->' "
                              "(or quick-start) marker above it; say what the fragment assumes")
                continue
            kind, parameters = markers[-1].group(1), markers[-1].group(2).strip()
            if kind == "quick-start":
                continue
            directives, body = [], []
            for code_line in match.group(1).split("\n"):
                (directives if DIRECTIVE.match(code_line.strip()) else body).append(code_line)
            name = re.sub(r"\W", "_", readme) + f"_{line}"
            source = "\n".join(directives) + f"""
namespace ReadmeSnippets;

// {readme}, the block at line {line}.
public sealed class Snippet_{name} : Fills
{{
    public static async Task Run({parameters})
    {{
        await Task.CompletedTask;
#line {line + 1 + len(directives)} "{pathlib.Path(readme).resolve()}"
""" + "\n".join("        " + l if l else l for l in body) + """
#line default
    }
}
"""
            (out / f"Snippet_{name}.cs").write_text(source, encoding="utf-8")
            count += 1
    for e in errors:
        print("readme snippets: error: " + e, file=sys.stderr)
    if not errors:
        print(f"readme snippets: {count} fragments written to {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
