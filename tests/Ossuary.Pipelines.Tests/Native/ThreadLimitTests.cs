namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library's first call in a process that can create no thread (RLIMIT_NPROC reached, a
/// cgroup's pids.max): the .NET runtime, which starts in that call and needs a thread, printed
/// "Fatal error. .NET runtime failed to initialize." and aborted the host program (SIGABRT).
/// tests/native/thread_limit.c sets the limit to 0 in a forked child, unprivileged: the calls
/// must fail (NULL, -1) and return, with the one-line reason on stderr.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class ThreadLimitTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task WithoutAThreadTheFirstCallFailsInsteadOfAbortingTheProgram(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("thread_limit", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("child: refused without aborting\n", result.Output, StringComparison.Ordinal);
        Assert.Contains("ok thread_limit\n", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("failed to initialize", result.Error, StringComparison.Ordinal);

        // Said once, for both refused calls.
        const string Reason = "libossuary: cannot start the .NET runtime: no thread can be created";
        Assert.Equal(1, result.Error.Split(Reason).Length - 1);
    }
}
