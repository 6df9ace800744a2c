namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// ossuary.h's "Threads" for a program that forks while another thread uses the library
/// (tests/native/fork_during_call.c): fork() copies only the thread that calls it, so a call under
/// way on another thread left its connection's lock held in the child by a thread that does not
/// exist there, and the child's next call on that connection never returned (20 children of 20
/// hung, each until its alarm). fork() now waits for calls under way to end.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class ForkDuringCallTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task AChildForkedWhileAnotherThreadIsInsideACallCanUseTheLibrary(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("fork_during_call", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok fork_during_call\n", result.Output);
    }
}
