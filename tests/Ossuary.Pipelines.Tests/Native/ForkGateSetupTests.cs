namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The fork handlers (src/Ossuary.Native/native/fork_gate.c) are set up at the library's first
/// call, once the runtime has started (a pthread key, then pthread_atfork). A failure of either was
/// ignored: the library went on without its fork protection (a fork then copied other threads' calls half-done into the child, as before
/// ForkDuringCallTests) and said nothing. tests/native/fork_gate_setup.c makes each step fail:
/// ossuary_create_connection() must return NULL and ossuary_generate_auth_keypair() -1, the
/// reason must be on stderr once, and the first call after the cause is gone must set them up.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class ForkGateSetupTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData("keys", "pthread_key_create failed (Resource temporarily unavailable)", NativeLink.Shared)]
    [InlineData("keys", "pthread_key_create failed (Resource temporarily unavailable)", NativeLink.Static)]
    [InlineData("atfork", "pthread_atfork failed (Cannot allocate memory)", NativeLink.Shared)]
    [InlineData("atfork", "pthread_atfork failed (Cannot allocate memory)", NativeLink.Static)]
    public async Task TheCallsThatMakeSomethingFailAndSayWhyUntilTheHandlersAreSetUp(string step, string reason, NativeLink link)
    {
        ProcessResult result = await native.RunAsync("fork_gate_setup", link, step);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok fork_gate_setup\n", result.Output);
        Assert.Equal(
            $"libossuary: cannot protect calls from fork(): {reason}; "
                + "ossuary_create_connection() returns NULL and ossuary_generate_auth_keypair() -1 until it succeeds.\n",
            result.Error);
    }

    /// <summary>
    /// Two threads' first calls: one sets the handlers up, held inside pthread_atfork, and the other must wait for it.
    /// Held 200 ms (<c>concurrent</c>), the other call succeeds and nothing is said; it got NULL or -1, with nothing
    /// said, because another thread was at it. Held 1.5 s (<c>stalled</c>), the wait ends at 1 s and the call fails
    /// saying why; the program's next call succeeds.
    /// </summary>
    [Theory]
    [InlineData("concurrent", false, NativeLink.Shared)]
    [InlineData("concurrent", false, NativeLink.Static)]
    [InlineData("stalled", true, NativeLink.Shared)]
    [InlineData("stalled", true, NativeLink.Static)]
    public async Task AFirstCallWhileAnotherThreadSetsTheHandlersUpWaitsForItAtMostASecond(string mode, bool waitRunsOut, NativeLink link)
    {
        ProcessResult result = await native.RunAsync("fork_gate_setup", link, mode);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok fork_gate_setup\n", result.Output);
        Assert.Equal(
            waitRunsOut
                ? "libossuary: cannot protect calls from fork(): another thread's set-up of the handlers had not ended after 1 s; "
                    + "ossuary_create_connection() returns NULL and ossuary_generate_auth_keypair() -1 until it ends.\n"
                : "",
            result.Error);
    }
}
