using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>A task that completes when an <see cref="OssuaryDuplexPipe"/> has ended under its application (its one end watcher).</summary>
internal sealed class EndWatcher : IConnectionEndWatcher
{
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private EndWatcher()
    {
    }

    /// <summary>Watches <paramref name="pipe"/>'s end, which no <c>OssuaryClientConnection</c> watches already.</summary>
    public static Task EndedForApplication(OssuaryDuplexPipe pipe)
    {
        var watcher = new EndWatcher();
        pipe.WatchEnd(watcher);
        return watcher._ended.Task;
    }

    public void OnEndedForApplication() => _ended.TrySetResult();
}
