namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// An exception the C library does not expect (a bug of ours, or a failure of a library below it)
/// used to vanish into the export's -1 or NULL, the same value as for a bad argument, with no trace
/// of its cause. tests/native/internal_error.c runs beside a libsodium.so (failing_sodium.c) whose
/// crypto_sign_seed_keypair fails: the two calls that make a key pair must each say so in one line
/// on stderr and still return their failure value, while the failures a caller or a peer causes
/// (bad handles and arguments, a garbled packet) write nothing.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class InternalErrorTests(NativeLibraryFixture native)
{
    private const string Prefix = "libossuary: internal error in ";

    [Fact]
    public async Task AnUnexpectedExceptionIsSaidOnStderrAndTheCallStillFails()
    {
        string program = await CompileBesideFailingLibsodiumAsync();

        ProcessResult result = await NativeProcess.RunAsync(program, [], native.NeutralDirectory);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok internal_error\n", result.Output);
        string[] lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 3 && lines[0] == "-- expected failures done", result.ToString());
        Assert.StartsWith(Prefix + "ossuary_generate_auth_keypair (its failure value was returned): CryptographicException: ", lines[1], StringComparison.Ordinal);
        Assert.StartsWith(Prefix + "ossuary_create_connection (its failure value was returned): CryptographicException: ", lines[2], StringComparison.Ordinal);

        // Where it was thrown, so that a report of the line points at the code.
        Assert.Contains(" at Geralt.Ed25519.GenerateKeyPair", lines[1], StringComparison.Ordinal);
    }

    /// <summary>
    /// internal_error beside a copy of libossuary.so, a libsodium.so built from failing_sodium.c and
    /// the real libsodium as libsodium_real.so, which the shim names as its dependency (linked
    /// against an empty stub of that name, since the real one's soname is libsodium.so).
    /// </summary>
    private async Task<string> CompileBesideFailingLibsodiumAsync()
    {
        string program = await native.CompileWithoutLibsodiumAsync(Path.Combine(native.SourcesDirectory, "internal_error.c"), "failing-libsodium");
        string folder = Path.GetDirectoryName(program)!;
        string stub = Path.Combine(folder, "stub");
        Directory.CreateDirectory(stub);
        File.Copy(Path.Combine(native.ArtifactsDirectory, "libsodium.so"), Path.Combine(folder, "libsodium_real.so"), overwrite: true);
        await GccAsync(folder, "-shared", "-fPIC", "-o", Path.Combine(stub, "libsodium_real.so"), "-Wl,-soname,libsodium_real.so", "-x", "c", "/dev/null");
        await GccAsync(
            folder,
            "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", Path.Combine(folder, "libsodium.so"),
            Path.Combine(native.SourcesDirectory, "failing_sodium.c"),
            "-L" + stub, "-Wl,--no-as-needed", "-lsodium_real", "-Wl,-rpath,$ORIGIN");
        return program;
    }

    private static async Task GccAsync(string folder, params string[] arguments)
    {
        ProcessResult result = await NativeProcess.RunAsync("gcc", arguments, folder, TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, result.ToString());
    }
}
