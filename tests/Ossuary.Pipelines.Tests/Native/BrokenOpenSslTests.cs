namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library in a process that can find an OpenSSL which is not whole (tests/native/broken_openssl.c
/// as libssl.so.3 and libcrypto.so.3, first on LD_LIBRARY_PATH). The library sealed and opened
/// records over 1,536 bytes with the BCL's ChaCha20-Poly1305, whose OpenSSL shim, finding libssl
/// without the symbols it requires, calls abort(): the host program died at its first large
/// message ("Cannot get required symbol a2d_ASN1_OBJECT from libssl", exit 134). It also loaded
/// OpenSSL, and with it the machine's openssl.cnf and whatever providers that names, into the
/// host. libsodium now takes every record in the C library, and OpenSSL is never loaded.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class BrokenOpenSslTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task ABrokenOpenSslOnTheSearchPathIsNeverLoaded(NativeLink link)
    {
        string folder = await BrokenOpenSslAsync(link);

        // message_sizes: 16,384 bytes each way, then an empty message.
        ProcessResult result = await native.RunAsync("inproc", link, new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = folder }, "message_sizes");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("ok message_sizes\n", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("broken_openssl: loaded", result.Error, StringComparison.Ordinal);
    }

    /// <summary>Builds tests/native/broken_openssl.c as libssl.so.3 and libcrypto.so.3 in a folder of their own.</summary>
    private async Task<string> BrokenOpenSslAsync(NativeLink link)
    {
        string folder = Path.Combine(native.RunDirectory, $"broken-openssl-{link}");
        Directory.CreateDirectory(folder);
        foreach (string name in new[] { "libssl.so.3", "libcrypto.so.3" })
        {
            ProcessResult compiled = await NativeProcess.RunAsync(
                "gcc",
                ["-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC", "-o", Path.Combine(folder, name), Path.Combine(native.SourcesDirectory, "broken_openssl.c")],
                folder,
                TimeSpan.FromMinutes(2));
            Assert.True(compiled.ExitCode == 0, compiled.ToString());
        }

        return folder;
    }
}
