namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>Runs one action per device, at most so many at once, each on the thread pool.</summary>
internal static class Fleet
{
    public static async Task ForAllAsync<T>(IReadOnlyList<T> items, int parallel, Func<T, Task> action)
    {
        using var gate = new SemaphoreSlim(parallel);
        await Task.WhenAll(items.Select(async item =>
        {
            await gate.WaitAsync();
            try
            {
                await Task.Run(() => action(item));
            }
            finally
            {
                gate.Release();
            }
        }));
    }
}
