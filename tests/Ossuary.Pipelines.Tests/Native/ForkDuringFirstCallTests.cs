namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// ossuary.h's "fork()" for a program that forks while other threads make their first call into
/// the library (tests/native/fork_during_first_call.c). A thread's first call attaches it to the
/// .NET runtime, and every call enters the runtime's cooperative mode, before the call's own code
/// runs; the fork gate was in that code, so a child forked at one of those steps inherited a
/// runtime that knew a thread the child does not have, and crashed (SIGSEGV) or hung at its next
/// thread start or collection (seen in 1 to 8 of a few hundred children). The gate is now in the
/// C entry points, around the whole call.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class ForkDuringFirstCallTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task AChildForkedWhileOtherThreadsMakeTheirFirstCallCanUseTheLibrary(NativeLink link)
    {
        // Its 200 forks take longer than RunAsync's minute on a loaded machine; the bound only
        // ends a run that hangs (a hung child ends at its own 30-second alarm).
        string program = await native.ProgramAsync("fork_during_first_call", link);
        await using NativeProcess process = NativeProcess.Start(program, [], native.NeutralDirectory);
        ProcessResult result = await process.WaitForExitAsync(TimeSpan.FromMinutes(10));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok fork_during_first_call\n", result.Output);
    }
}
