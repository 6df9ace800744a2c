using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// The follower reads a refused change again from the monitor every second, outside its lock. A newer
/// change the monitor announced while such a read was under way was taken first, and then the value
/// the read returned, older, was handed on and taken after it: the server went back to options the
/// configuration no longer says (a client key removed in the newer change admitted again) until the
/// next change came.
/// </summary>
public sealed class OptionsFollowerOrderTests
{
    [Fact]
    public async Task AValueReadBeforeANewerChangeWasTakenIsNotHandedOnAfterIt()
    {
        var older = new Settings { Name = "older" };
        var newer = new Settings { Name = "newer" };
        using var monitor = new GatedMonitor { Current = older };
        var handed = new List<string>();
        using var follower = new OptionsFollower<Settings>(monitor, null, Options.DefaultName, new Settings { Name = "first" },
            (options, _, _) =>
            {
                lock (handed)
                {
                    handed.Add(options.Name);

                    // The older change is refused the first time (its key file not there yet, say): read again in a second.
                    return handed.Count == 1 ? OptionsApplied.Refused(new IOException("not there yet")) : OptionsApplied.Taken;
                }
            },
            _ => { });

        monitor.Announce(older);
        await monitor.Reading.Within(); // the retry has read the older value, and is held there
        monitor.Current = newer;
        monitor.Announce(newer); // taken
        monitor.Release();

        // Either the older value is handed on again (the fault), or the follower reads the monitor once more.
        // Values are handed on from a pool thread: the newer one too, before the answer is read.
        await HostilePeerTests.WaitForAsync(() => Handed(handed).Contains("newer") && (monitor.Reads >= 2 || Handed(handed).Count(name => name == "older") == 2));
        Assert.Equal(["older", "newer"], Handed(handed));
    }

    private static List<string> Handed(List<string> handed)
    {
        lock (handed)
        {
            return [.. handed];
        }
    }

    private sealed class Settings
    {
        public string Name { get; init; } = "";
    }

    /// <summary>A monitor whose first read is held until <see cref="Release"/>, with the value it had when the read began.</summary>
    private sealed class GatedMonitor : IOptionsMonitor<Settings>, IDisposable
    {
        private readonly List<Action<Settings, string?>> _listeners = [];
        private readonly TaskCompletionSource _reading = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ManualResetEventSlim _gate = new();
        private int _reads;
        private volatile Settings? _current;

        public Settings Current { get => _current!; set => _current = value; }

        public Task Reading => _reading.Task;

        public int Reads => Volatile.Read(ref _reads);

        public Settings CurrentValue => Get(Options.DefaultName);

        public Settings Get(string? name)
        {
            Settings value = Current;
            if (Interlocked.Increment(ref _reads) == 1)
            {
                _reading.TrySetResult();
                _gate.Wait(TestTimeout.Default);
            }

            return value;
        }

        public IDisposable? OnChange(Action<Settings, string?> listener)
        {
            lock (_listeners)
            {
                _listeners.Add(listener);
            }

            return null;
        }

        /// <summary>Tells the listeners of <paramref name="value"/>, as the monitor does on a reload.</summary>
        public void Announce(Settings value)
        {
            Action<Settings, string?>[] listeners;
            lock (_listeners)
            {
                listeners = [.. _listeners];
            }

            foreach (Action<Settings, string?> listener in listeners)
            {
                listener(value, Options.DefaultName);
            }
        }

        public void Release() => _gate.Set();

        public void Dispose() => _gate.Dispose();
    }
}
