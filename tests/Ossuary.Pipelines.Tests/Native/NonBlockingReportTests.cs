namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library's one-line reason on stderr when its first call cannot start, said once per
/// process, must survive a non-blocking stderr with no room (a program that set O_NONBLOCK on a pipe
/// it shares with a logger that is behind): write(2) failed with EAGAIN at once and the library gave
/// up, so the only reason the program would ever get was lost. tests/native/nonblocking_report.c
/// drains the pipe once the call waits for room (or has returned); the line must be in it.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class NonBlockingReportTests(NativeLibraryFixture native)
{
    /// <summary>runtime_start.c's reason: no thread can be created for the runtime (RLIMIT_NPROC 0 in a child).</summary>
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task TheNoThreadReasonWaitsForRoomOnANonBlockingStderr(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("nonblocking_report", link, "thread");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok nonblocking_report\n", result.Output);
    }

    /// <summary>LibsodiumLoader's reason: libossuary.so alone in a folder, no libsodium.so on the search path.</summary>
    [Fact]
    public async Task TheMissingLibsodiumReasonWaitsForRoomOnANonBlockingStderr()
    {
        string program = await native.CompileWithoutLibsodiumAsync(Path.Combine(native.SourcesDirectory, "nonblocking_report.c"), "nonblocking-without-libsodium");

        ProcessResult result = await NativeProcess.RunAsync(program, ["sodium"], native.NeutralDirectory);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok nonblocking_report\n", result.Output);
    }
}
