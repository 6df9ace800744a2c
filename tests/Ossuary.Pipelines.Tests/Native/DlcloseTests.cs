namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// libossuary.so loaded with dlopen() and closed with dlclose(), as plugin hosts and language
/// bindings do (tests/native/dlclose.c). dlclose() unmapped the library and the .NET runtime in it,
/// though the runtime's finalizer thread and the clean-up it runs when a thread that called in
/// exits are code of the library: such a thread, exiting after the dlclose(), crashed the host
/// with SIGSEGV (the original's library survives it). The library is now marked not to be
/// unloaded (-z nodelete): dlclose() leaves it mapped.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class DlcloseTests(NativeLibraryFixture native)
{
    [Fact]
    public async Task AThreadThatCalledInExitsSafelyAfterTheLibraryIsClosed()
    {
        // Not linked against the library, which would keep it loaded: the program only dlopen()s it.
        string program = Path.Combine(native.ProgramsDirectory, "dlclose");
        ProcessResult compiled = await NativeProcess.RunAsync(
            "gcc",
            ["-Wall", "-Wextra", "-Werror", "-O1", "-o", program, Path.Combine(native.SourcesDirectory, "dlclose.c"), "-I" + native.ArtifactsDirectory],
            native.ProgramsDirectory,
            TimeSpan.FromMinutes(2));
        Assert.True(compiled.ExitCode == 0, compiled.ToString());

        ProcessResult result = await NativeProcess.RunAsync(program, [Path.Combine(native.ArtifactsDirectory, "libossuary.so")], native.NeutralDirectory);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok dlclose\n", result.Output);
    }
}
