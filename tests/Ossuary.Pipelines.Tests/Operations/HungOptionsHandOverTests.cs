using System.Collections.Concurrent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// An owner of followed options that reads a file which never answers: here a named pipe nobody writes,
/// whose open waits for a writer (a key file on a hung network mount does the same to a server, see
/// <see cref="HungKeyFileReloadTests"/>). The follower handed each announced value on and waited for it on
/// the configuration's reload thread, inside its change callback: that reload never returned, every later
/// change of the configuration waited behind it, each holding one more thread, and a good change never
/// applied. It now waits a bounded time, reports the hung value, and hands the next one on beside it.
/// </summary>
public sealed class HungOptionsHandOverTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-hung-offer-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AChangeWhoseFileNeverAnswersIsReportedAndALaterChangeStillApplies()
    {
        string pipe = Path.Combine(_folder, "key");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", pipe]))
        {
            await mkfifo.WaitForExitAsync().Within();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        var data = new Dictionary<string, string?> { ["Settings:Name"] = "first" };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(data)).Build();
        var services = new ServiceCollection();
        services.Configure<Settings>(configuration.GetSection("Settings"));
        using ServiceProvider provider = services.BuildServiceProvider();
        var monitor = provider.GetRequiredService<IOptionsMonitor<Settings>>();
        var applied = new List<string>();
        var refused = new ConcurrentQueue<Exception>();
        int reading = 0;
        var follower = new OptionsFollower<Settings>(monitor,
            (provider.GetServices<IOptionsChangeTokenSource<Settings>>(), provider.GetRequiredService<IOptionsMonitorCache<Settings>>()),
            Options.DefaultName, monitor.CurrentValue,
            (options, again, superseded) =>
            {
                Interlocked.Increment(ref reading);
                try
                {
                    if (options.File is { } file)
                    {
                        using var read = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
                        _ = read.ReadByte();
                    }

                    lock (applied)
                    {
                        if (!superseded())
                        {
                            applied.Add(options.Name);
                        }
                    }

                    return OptionsApplied.Taken;
                }
                finally
                {
                    Interlocked.Decrement(ref reading);
                }
            },
            refused.Enqueue);
        FileStream? writer = null;
        try
        {
            // Each reload runs the listeners on its own thread, as a file source's does; each must return.
            data["Settings:File"] = pipe;
            data["Settings:Name"] = "hung";
            await Task.Run(configuration.Reload).Within();
            await HostilePeerTests.WaitForAsync(() => !refused.IsEmpty);
            TimeoutException hung = Assert.IsType<TimeoutException>(Assert.Single(refused));
            Assert.Contains("does not answer", hung.Message, StringComparison.Ordinal);

            data["Settings:Name"] = "hung again";
            await Task.Run(configuration.Reload).Within();
            await HostilePeerTests.WaitForAsync(() => refused.Count == 2);

            data.Remove("Settings:File");
            data["Settings:Name"] = "good";
            await Task.Run(configuration.Reload).Within();
            await HostilePeerTests.WaitForAsync(() => Applied(applied).Contains("good"));
            Assert.Equal(["good"], Applied(applied));
            Assert.Equal(2, Volatile.Read(ref reading)); // the two reads that hang, and no thread more

            // A writer lets the hung reads go: given up on, they put nothing in force after the good change.
            writer = new FileStream(pipe, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
            writer.Dispose();
            await HostilePeerTests.WaitForAsync(() => Volatile.Read(ref reading) == 0);
            Assert.Equal(["good"], Applied(applied));
        }
        finally
        {
            follower.Dispose();
            if (Volatile.Read(ref reading) > 0)
            {
                using var release = new FileStream(pipe, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
            }
        }
    }

    private static List<string> Applied(List<string> applied)
    {
        lock (applied)
        {
            return [.. applied];
        }
    }

    public sealed class Settings
    {
        public string Name { get; set; } = "";

        public string? File { get; set; }
    }
}
