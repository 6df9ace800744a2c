namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// ossuary.h's trust pause (OSSUARY_ERR_UNTRUSTED_SERVER) lasts at most one minute, whenever the
/// decision comes: tests/native/trust_timeout.c moves the monotonic clock the library reads (it
/// defines clock_gettime itself) instead of waiting, and checks a key added after 59 s (the
/// handshake resumes), a send after 61 s (Disconnect (error), which shows the library sees the
/// moved clock) and a key added after 61 s with no call in between, which resumed the handshake.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class TrustDecisionTimeoutTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task AKeyAddedAfterTheMinuteDoesNotResumeTheHandshake(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("trust_timeout", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok trust_timeout\n", result.Output);
    }
}
