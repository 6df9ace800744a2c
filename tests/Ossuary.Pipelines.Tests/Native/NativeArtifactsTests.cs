using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>What `dotnet publish src/Ossuary.Native` leaves, and how the libraries are put together.</summary>
[Collection(NativeLibraryCollection.Name)]
public sealed partial class NativeArtifactsTests(NativeLibraryFixture native)
{
    [Fact]
    public void PublishLeavesBothLibrariesLibsodiumAndTheHeader()
    {
        foreach (string file in new[] { "libossuary.so", "libossuary.a", "libsodium.so", "ossuary.h" })
        {
            Assert.True(File.Exists(Path.Combine(native.ArtifactsDirectory, file)), $"{file} is missing from {native.ArtifactsDirectory}");
        }
    }

    /// <summary>
    /// A C program ships what the publish leaves (the README's link commands copy it beside the
    /// program): libsodium.so (ISC) and, compiled into both libraries, Geralt and the .NET runtime
    /// (MIT), whose licences ask for their notice in every copy. The tool's package carries them;
    /// so must this folder, with the library's own licence and NOTICE.
    /// </summary>
    [Fact]
    public void PublishLeavesTheLicenceNoticesOfWhatTheLibrariesCarry()
    {
        foreach (string file in new[] { "LICENSE", "NOTICE", "THIRD-PARTY-NOTICES.txt" })
        {
            Assert.True(File.Exists(Path.Combine(native.ArtifactsDirectory, file)), $"{file} is missing from {native.ArtifactsDirectory}");
        }

        string notices = File.ReadAllText(Path.Combine(native.ArtifactsDirectory, "THIRD-PARTY-NOTICES.txt"));
        foreach (string component in new[] { "libsodium (", "Geralt (", ".NET runtime (" })
        {
            Assert.Contains(component, notices, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void LibsodiumIsTheOneFromTheNuGetPackageGeraltNeeds()
    {
        // The test assembly gets Geralt's libsodium from the same package, for the same RID.
        byte[] published = File.ReadAllBytes(Path.Combine(native.ArtifactsDirectory, "libsodium.so"));
        byte[] fromPackage = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libsodium.so"));

        Assert.Equal(fromPackage, published);
        Assert.Contains("1.0.22", Encoding.Latin1.GetString(published), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SharedLibraryExportsExactlyTheFunctionsOfTheHeader()
    {
        string nm = await NativeLibraryFixture.ToolAsync("nm", "-D", "--defined-only", Path.Combine(native.ArtifactsDirectory, "libossuary.so"));

        Assert.Equal(HeaderFunctions(), SymbolNames(nm));
    }

    [Fact]
    public async Task StaticArchiveKeepsOnlyTheFunctionsOfTheHeaderGlobal()
    {
        string nm = await NativeLibraryFixture.ToolAsync("nm", "-g", "--defined-only", Path.Combine(native.ArtifactsDirectory, "libossuary.a"));

        Assert.Equal(HeaderFunctions(), SymbolNames(nm));
    }

    [Fact]
    public async Task SharedLibraryLooksForItsDependenciesBesideItself()
    {
        string dynamic = await NativeLibraryFixture.ToolAsync("readelf", "-d", Path.Combine(native.ArtifactsDirectory, "libossuary.so"));

        Assert.Contains("(RUNPATH)", dynamic, StringComparison.Ordinal);
        Assert.Contains("Library runpath: [$ORIGIN]", dynamic, StringComparison.Ordinal);
        Assert.Equal(["ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6"], Needed(dynamic).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    [InlineData(NativeLink.SharedAddressSanitizer)]
    public async Task LibsodiumIsLoadedFromBesideTheLibraryNeverFromTheSystem(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("inproc", link, "which_libsodium");

        Assert.True(result.ExitCode == 0, result.ToString());
        string expected = link != NativeLink.Static
            ? Path.Combine(native.ArtifactsDirectory, "libsodium.so") // beside libossuary.so: the program is elsewhere
            : Path.Combine(native.StaticDirectory, "libsodium.so");   // beside the statically linked program
        Assert.Contains($"libsodium {expected}\n", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheStaticProgramFindsLibsodiumBesideItselfWhateverItsArgv0()
    {
        // For the program itself dladdr gives argv[0], which whoever starts it chooses.
        string program = await native.ProgramAsync("inproc", NativeLink.Static);
        ProcessResult result = await NativeProcess.RunAsync(
            "bash", ["-c", "exec -a not-the-program \"$0\" which_libsodium", program], native.NeutralDirectory);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"libsodium {Path.Combine(native.StaticDirectory, "libsodium.so")}\n", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALibraryLoadedByARelativePathFindsLibsodiumBesideItself()
    {
        // Through LD_LIBRARY_PATH=. the loader knows the library only as ./libossuary.so.
        string program = await native.ProgramAsync("inproc", NativeLink.Shared);
        await using NativeProcess process = NativeProcess.Start(
            program, ["which_libsodium"], native.ArtifactsDirectory, new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = "." });
        ProcessResult result = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"libsodium {Path.Combine(native.ArtifactsDirectory, "libsodium.so")}\n", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheRuntimeReservesAFewGibibytesNotTwiceTheMachinesMemory()
    {
        // The GC sizes and clears its bookkeeping by its address range (5 GiB, five times the heap
        // limit in the project file): by default, twice the machine's memory or more, which the
        // first call pays for. AddressSpaceLimitTests checks that it fits under a smaller limit.
        string source = Path.Combine(native.RunDirectory, "address_space.c");
        File.WriteAllText(source, """
            #include <stdio.h>
            #include <string.h>
            #include "ossuary.h"
            int main(void) {
              OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
              int created = conn != NULL;
              char line[256];
              FILE *status = fopen("/proc/self/status", "r");
              while (status != NULL && fgets(line, sizeof(line), status) != NULL) {
                if (strncmp(line, "VmSize:", 7) == 0) {
                  fputs(line, stdout);
                }
              }
              ossuary_destroy_connection(&conn);
              return created ? 0 : 1;
            }
            """);
        (ProcessResult compiled, string program) = await native.CompileSourceAsync(source, "address_space");
        Assert.True(compiled.ExitCode == 0, compiled.ToString());

        ProcessResult result = await NativeProcess.RunAsync(program, [], native.NeutralDirectory);

        Assert.True(result.ExitCode == 0, result.ToString());
        long kilobytes = long.Parse(AddressSpace().Match(result.Output).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(kilobytes, 1, 6L * 1024 * 1024);
    }

    [Fact]
    public async Task StaticallyLinkedProgramNeedsOnlyTheCLibrary()
    {
        string program = await native.ProgramAsync("inproc", NativeLink.Static);
        string dynamic = await NativeLibraryFixture.ToolAsync("readelf", "-d", program);

        Assert.Equal(["ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6"], Needed(dynamic).Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// The README's link commands for C developers, run as written from a folder laid out as they
    /// assume (the publish output in artifacts/native, the program's source app.c), followed by
    /// the program they built: a command that builds a program which cannot start is a broken
    /// instruction, whatever the library does.
    /// </summary>
    [Theory]
    [InlineData("**Linking against `libossuary.so`.**")]
    [InlineData("**Linking against `libossuary.a`.**")]
    public async Task TheReadmesLinkCommandBuildsAProgramThatRuns(string paragraph)
    {
        string commands = ReadmeShellBlockAfter(paragraph);
        string root = Path.Combine(native.RunDirectory, "readme-" + (paragraph.Contains(".so", StringComparison.Ordinal) ? "shared" : "static"));
        string published = Path.Combine(root, "artifacts", "native");
        Directory.CreateDirectory(published);
        foreach (string file in Directory.GetFiles(native.ArtifactsDirectory))
        {
            File.Copy(file, Path.Combine(published, Path.GetFileName(file)), overwrite: true);
        }

        const string App = """
            #include <stdio.h>
            #include "ossuary.h"
            int main(void) {
              OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
              printf("created %d\n", conn != NULL);
              ossuary_destroy_connection(&conn);
              return 0;
            }
            """;

        // Where the README's commands look for the source: the folder they run in, or myapp/.
        File.WriteAllText(Path.Combine(root, "app.c"), App);
        Directory.CreateDirectory(Path.Combine(root, "myapp"));
        File.WriteAllText(Path.Combine(root, "myapp", "app.c"), App);

        // The commands, then the program they built (a.out, in the folder they ended in).
        ProcessResult result = await NativeProcess.RunAsync("bash", ["-ec", commands + "\n./a.out\n"], root, TimeSpan.FromMinutes(2));

        Assert.True(result.ExitCode == 0, $"{commands}\n{result}");
        Assert.Contains("created 1\n", result.Output, StringComparison.Ordinal);
    }

    /// <summary>The first ```sh block after <paramref name="paragraph"/> in the README.</summary>
    private static string ReadmeShellBlockAfter(string paragraph)
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root(), "README.md"));
        int at = readme.IndexOf(paragraph, StringComparison.Ordinal);
        Assert.True(at >= 0, $"The README has no paragraph {paragraph}");
        int start = readme.IndexOf("```sh\n", at, StringComparison.Ordinal) + "```sh\n".Length;
        int end = readme.IndexOf("```", start, StringComparison.Ordinal);
        return readme[start..end];
    }

    /// <summary>The functions ossuary.h declares.</summary>
    private string[] HeaderFunctions()
    {
        string header = File.ReadAllText(Path.Combine(native.ArtifactsDirectory, "ossuary.h"));
        string[] names = [.. Declaration().Matches(header).Select(m => m.Groups[1].Value).Distinct().Order(StringComparer.Ordinal)];
        Assert.Equal(14, names.Length);
        return names;
    }

    /// <summary>The names in nm's output ("ADDRESS TYPE NAME"), archive member headers left out.</summary>
    private static string[] SymbolNames(string nm) =>
        [.. nm.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(line => !line.EndsWith(':'))
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1])
            .Order(StringComparer.Ordinal)];

    private static IEnumerable<string> Needed(string readelf) =>
        NeededEntry().Matches(readelf).Select(m => m.Groups[1].Value);

    [GeneratedRegex(@"^[A-Za-z_]\w*\s+\**(ossuary_\w+)\(", RegexOptions.Multiline)]
    private static partial Regex Declaration();

    [GeneratedRegex(@"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")]
    private static partial Regex NeededEntry();

    [GeneratedRegex(@"^VmSize:\s+(\d+) kB$", RegexOptions.Multiline)]
    private static partial Regex AddressSpace();
}
