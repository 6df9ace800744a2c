namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>Waits on what the sample's store consumer has done, not on time.</summary>
internal static class ConsumerProgress
{
    /// <summary>
    /// Until <paramref name="done"/>: the hard limit's budget (<paramref name="cancellationToken"/>) fails a wait
    /// that never ends, and a consumer that failed fails the wait with its exception.
    /// </summary>
    public static async Task WaitForAsync(Func<bool> done, Task consuming, CancellationToken cancellationToken)
    {
        while (!done())
        {
            if (consuming.IsCompleted)
            {
                await consuming;
                Assert.Fail("The consumer stopped before it was stopped.");
            }

            await Task.Delay(20, cancellationToken);
        }
    }
}
