using System.Text;
using System.Text.RegularExpressions;

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
    public async Task StaticallyLinkedProgramNeedsOnlyTheCLibrary()
    {
        string program = await native.ProgramAsync("inproc", NativeLink.Static);
        string dynamic = await NativeLibraryFixture.ToolAsync("readelf", "-d", program);

        Assert.Equal(["ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6"], Needed(dynamic).Order(StringComparer.Ordinal));
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
}
