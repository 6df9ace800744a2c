using System.Text.RegularExpressions;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library under AddressSanitizer and without its libsodium: ASan's dlopen wrapper hides
/// libossuary.so's $ORIGIN from the loader, so the library finds libsodium.so by its own path;
/// when libsodium is missing it says so on stderr, once.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed partial class SanitizerBuildTests(NativeLibraryFixture native)
{
    [Fact]
    public async Task AnAddressSanitizerBuildRunsEveryScenarioWithoutLdLibraryPath()
    {
        // NativeProcess removes LD_LIBRARY_PATH; LSAN_OPTIONS names tests/native/lsan.supp.
        ProcessResult result = await native.RunAsync("inproc", NativeLink.SharedAddressSanitizer);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(NativeApiTests.Scenarios, OkLine().Matches(result.Output).Select(m => m.Groups[1].Value));
        Assert.DoesNotContain("Sanitizer", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutTheSuppressionsLeakSanitizerReportsOnlyTheRuntimesStartUpAllocation()
    {
        ProcessResult result = await native.RunAsync(
            "inproc", NativeLink.SharedAddressSanitizer, new Dictionary<string, string> { ["LSAN_OPTIONS"] = "" }, "generated_keys");

        // What tests/native/lsan.supp is for, and nothing else: one 88-byte allocation.
        Assert.True(result.ExitCode != 0, result.ToString());
        Assert.Contains("ok generated_keys\n", result.Output, StringComparison.Ordinal);
        Assert.Contains("SUMMARY: AddressSanitizer: 88 byte(s) leaked in 1 allocation(s).", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingLibsodiumIsSaidOnceOnStderr()
    {
        // libossuary.so alone in a folder, and no libsodium.so on the search path.
        string alone = Path.Combine(native.RunDirectory, "without-libsodium");
        Directory.CreateDirectory(alone);
        File.Copy(Path.Combine(native.ArtifactsDirectory, "libossuary.so"), Path.Combine(alone, "libossuary.so"), overwrite: true);
        string source = Path.Combine(alone, "three_tries.c");
        File.WriteAllText(source, """
            #include <stdio.h>
            #include "ossuary.h"
            int main(void) {
              int null = 0;
              for (int i = 0; i < 3; i++) {
                OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
                null += conn == NULL;
                ossuary_destroy_connection(&conn);
              }
              printf("null %d\n", null);
              return 0;
            }
            """);
        string program = Path.Combine(alone, "three_tries");
        ProcessResult compiled = await NativeProcess.RunAsync(
            "gcc", ["-Wall", "-Werror", "-o", program, source, "-I" + native.ArtifactsDirectory, "-L" + alone, "-lossuary", "-Wl,-rpath," + alone], alone, TimeSpan.FromMinutes(2));
        Assert.True(compiled.ExitCode == 0, compiled.ToString());

        ProcessResult result = await NativeProcess.RunAsync(program, [], native.NeutralDirectory);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("null 3\n", result.Output);
        // "cannot load libsodium: no .../libsodium.so beside libossuary ..." here; where a system
        // libsodium.so exists but is too old for Geralt, "libsodium could not be started (...)".
        Match said = Assert.Single(Regex.Matches(result.Error, "^libossuary: .*$", RegexOptions.Multiline));
        Assert.Contains("libsodium", said.Value, StringComparison.Ordinal);
        if (said.Value.StartsWith("libossuary: cannot load", StringComparison.Ordinal))
        {
            Assert.Contains(Path.Combine(alone, "libsodium.so"), said.Value, StringComparison.Ordinal);
        }
    }

    [GeneratedRegex(@"^ok (\w+)$", RegexOptions.Multiline)]
    private static partial Regex OkLine();
}
