using System.Text;
using System.Text.RegularExpressions;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// Our ossuary.h against the original's (../shared/interop/libossuary-0.5.2/ossuary.h): every
/// prototype of the original, taken from its header, holds for ours exactly, so C and C++ code
/// that stores the functions in pointers typed after the original compiles; the original's
/// include guard; our additions marked.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed partial class OriginalHeaderTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData("cpp")]
    [InlineData("c")]
    public async Task EveryOriginalPrototypeTypesAPointerToOurFunction(string language)
    {
        IReadOnlyList<Prototype> original = OriginalPrototypes();
        Assert.Equal(13, original.Count);
        string source = Path.Combine(native.RunDirectory, $"original_prototypes.{language}");
        File.WriteAllText(source, PointerProgram(original, language == "cpp"));

        (ProcessResult compiled, string program) = await native.CompileSourceAsync(source, $"original_prototypes_{language}");
        Assert.True(compiled.ExitCode == 0, $"{compiled}\n--- source\n{File.ReadAllText(source)}");
        ProcessResult run = await NativeProcess.RunAsync(program, [], native.NeutralDirectory);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal($"ok {original.Count} pointers\n", run.Output);
    }

    [Fact]
    public void WhatTheOriginalDoesNotHaveIsMarkedAsAnAddition()
    {
        string ours = File.ReadAllText(Path.Combine(native.ArtifactsDirectory, "ossuary.h"));
        string[] originalNames = [.. OriginalPrototypes().Select(p => p.Name)];
        string[] ourNames = [.. Declaration().Matches(ours).Select(m => m.Groups[2].Value)];

        Assert.Empty(originalNames.Except(ourNames));
        string addition = Assert.Single(ourNames.Except(originalNames));
        Assert.Equal("ossuary_disconnect", addition);

        // The comment right before the declaration says it is an addition, and that a program
        // with its own ossuary_disconnect conflicts with the static library.
        int declaration = ours.IndexOf("int32_t ossuary_disconnect(", StringComparison.Ordinal);
        string comment = ours[ours.LastIndexOf("/*", declaration, StringComparison.Ordinal)..declaration];
        Assert.StartsWith("/*\n * Addition", comment, StringComparison.Ordinal);
        Assert.Contains("libossuary.a", comment, StringComparison.Ordinal);
        Assert.Contains("#define OSSUARY_HAS_DISCONNECT 1", ours, StringComparison.Ordinal);
        Assert.Contains("#ifndef _OSSUARY_H\n#define _OSSUARY_H\n", ours, StringComparison.Ordinal);
        Assert.Contains("extern \"C\" {", ours, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnOriginalProgramDefiningItsOwnOssuaryDisconnectDoesNotLinkAgainstOurArchive()
    {
        // Written for libossuary 0.5 (its header declares no ossuary_disconnect), with a helper of that name.
        string source = Path.Combine(native.RunDirectory, "own_disconnect.c");
        File.WriteAllText(source, """
            #include "ossuary.h"
            int ossuary_disconnect(OssuaryConnection *conn, uint8_t error) { (void)conn; return error; }
            int main(void) {
              OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, 0);
              ossuary_disconnect(conn, 0);
              ossuary_destroy_connection(&conn);
              return 0;
            }
            """);

        ProcessResult result = await NativeProcess.RunAsync(
            "gcc",
            ["-o", Path.Combine(native.RunDirectory, "own_disconnect"), source, "-I" + NativeLibraryFixture.OriginalDirectory, "-L" + native.StaticDirectory, "-lossuary", "-lm"],
            native.RunDirectory,
            TimeSpan.FromMinutes(2));

        // The documented conflict (ossuary.h, at ossuary_disconnect): two definitions of one symbol.
        Assert.True(result.ExitCode != 0, result.ToString());
        Assert.Contains("multiple definition of `ossuary_disconnect'", result.Error, StringComparison.Ordinal);
    }

    /// <summary>A program that stores each function in a pointer of the original's prototype, and calls a few through them.</summary>
    private static string PointerProgram(IReadOnlyList<Prototype> prototypes, bool cpp)
    {
        var source = new StringBuilder();
        source.AppendLine(cpp ? "#include <cstdio>" : "#include <stdio.h>");
        source.AppendLine("#include \"ossuary.h\"");
        source.AppendLine("#ifndef _OSSUARY_H");
        source.AppendLine("#error \"the original's include guard, _OSSUARY_H, is not defined\"");
        source.AppendLine("#endif");
        source.AppendLine("/* Types and pointers generated from the original's ossuary.h. */");
        foreach (Prototype p in prototypes)
        {
            source.AppendLine($"typedef {p.Return} (*{p.Name}_fn)({p.Parameters});");
            source.AppendLine($"{p.Name}_fn const p_{p.Name} = &{p.Name};");
        }

        source.AppendLine("""
            int main(void) {
              uint8_t secret[32], pub[32], packet[512];
              uint16_t len = sizeof(packet);
              OssuaryConnection *client, *server;
              if (p_ossuary_generate_auth_keypair(secret, 32, pub, 32) != 0) return 1;
              client = p_ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, 0);
              server = p_ossuary_create_connection(OSSUARY_CONN_TYPE_AUTHENTICATED_SERVER, secret);
              if (client == 0 || server == 0 || p_ossuary_add_authorized_key(client, pub) != 0) return 2;
              if (p_ossuary_send_handshake(client, packet, &len) != 92) return 3;
              if (p_ossuary_recv_handshake(server, packet, &len) != 92) return 4;
              if (p_ossuary_handshake_done(server) != 0) return 5;
              p_ossuary_destroy_connection(&client);
              p_ossuary_destroy_connection(&server);
            """);
        source.AppendLine($"  printf(\"ok %d pointers\\n\", {prototypes.Count});");
        source.AppendLine("  return 0;\n}");
        return source.ToString();
    }

    private static List<Prototype> OriginalPrototypes()
    {
        string header = File.ReadAllText(Path.Combine(NativeLibraryFixture.OriginalDirectory, "ossuary.h"));
        return [.. Declaration().Matches(header).Select(m => new Prototype(
            m.Groups[1].Value.Trim(),
            m.Groups[2].Value,
            Regex.Replace(m.Groups[3].Value, @"\s+", " ").Trim()))];
    }

    private sealed record Prototype(string Return, string Name, string Parameters);

    /// <summary>A function declaration at the start of a line: return type (with any '*'), name, parameters (over several lines).</summary>
    [GeneratedRegex(@"^((?:const\s+)?[A-Za-z_]\w*\s*\**\s*)(ossuary_\w+)\(([^)]*)\);", RegexOptions.Multiline)]
    private static partial Regex Declaration();
}
