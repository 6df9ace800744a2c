namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library on a machine without OpenSSL (a slim container image has neither libssl nor
/// libcrypto): tests/native/no_openssl.c, preloaded, makes every dlopen() of them fail. The
/// handshake and small records never needed OpenSSL, so without the fallback a program got as far
/// as its first message over 1,536 bytes, which ossuary_send_data() refused with -1 (and which
/// ossuary_recv_data() never opened), with nothing said anywhere. The C library now never loads
/// OpenSSL at all (<see cref="BrokenOpenSslTests"/>).
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class WithoutOpenSslTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task MessagesOfEverySizeGoThroughWithoutOpenSsl(NativeLink link)
    {
        string preload = await NoOpenSslAsync(link);

        // message_sizes: 16,384 bytes each way, then an empty message.
        ProcessResult result = await native.RunAsync("inproc", link, new Dictionary<string, string> { ["LD_PRELOAD"] = preload }, "message_sizes");

        // The C library never asks for OpenSSL (BrokenOpenSslTests says why), missing or not.
        Assert.DoesNotContain("no_openssl: refused", result.Error, StringComparison.Ordinal);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("ok message_sizes\n", result.Output, StringComparison.Ordinal);
    }

    /// <summary>Builds tests/native/no_openssl.c into a shared object of its own for this link.</summary>
    private async Task<string> NoOpenSslAsync(NativeLink link)
    {
        string output = Path.Combine(native.RunDirectory, $"no_openssl-{link}.so");
        ProcessResult compiled = await NativeProcess.RunAsync(
            "gcc",
            ["-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC", "-o", output, Path.Combine(native.SourcesDirectory, "no_openssl.c")],
            native.RunDirectory,
            TimeSpan.FromMinutes(2));
        Assert.True(compiled.ExitCode == 0, compiled.ToString());
        return output;
    }
}
