namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library's one-line reason on stderr when its first call cannot start, said once per
/// process, must survive a signal: with stderr a full pipe (a logger that is behind) the write
/// blocks, and a program's handler installed without SA_RESTART made it fail with EINTR, so the
/// only reason the program would ever get was lost. tests/native/interrupted_report.c interrupts
/// the blocked write (a second thread watches /proc for it, then waits for the handler to have run)
/// and drains the pipe; the line must be in it.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class InterruptedReportTests(NativeLibraryFixture native)
{
    /// <summary>runtime_start.c's reason: no thread can be created for the runtime (RLIMIT_NPROC 0 in a child).</summary>
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task TheNoThreadReasonIsWrittenAgainAfterASignalInterruptsIt(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("interrupted_report", link, "thread");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok interrupted_report\n", result.Output);
    }

    /// <summary>LibsodiumLoader's reason: libossuary.so alone in a folder, no libsodium.so on the search path.</summary>
    [Fact]
    public async Task TheMissingLibsodiumReasonIsWrittenAgainAfterASignalInterruptsIt()
    {
        string program = await native.CompileWithoutLibsodiumAsync(Path.Combine(native.SourcesDirectory, "interrupted_report.c"), "interrupted-without-libsodium");

        ProcessResult result = await NativeProcess.RunAsync(program, ["sodium"], native.NeutralDirectory);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok interrupted_report\n", result.Output);
    }
}
