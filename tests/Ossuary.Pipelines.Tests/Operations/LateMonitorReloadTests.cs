using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Ossuary.Pipelines.Configuration;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;
using static Ossuary.Pipelines.Tests.Support.LogRecords;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A reload calls the change tokens' listeners one after the other on the reloading thread: the
/// follower's, then those of whatever else follows the configuration, then, on every other reload,
/// the options monitor's. The follower read the monitor a fixed 100 ms after its own call and took
/// what it found for the monitor's value; when the monitor came later (a loaded machine, a host with
/// many options bound to the same configuration), that was the value from before the change, the one
/// in force, so there was nothing to hand on and nothing to read again. A change the validator then
/// refused was never reported (event 24) nor read again: a key file copied into place afterwards
/// changed nothing until some other setting changed.
/// </summary>
public sealed class LateMonitorReloadTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-late-monitor-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AChangeTheMonitorRefusesAfterTheFollowerHasReadItIsReportedAndReadAgain()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listed = OssuaryIdentity.Generate();
        using var filed = OssuaryIdentity.Generate();
        var settings = new Dictionary<string, string?> { ["Ossuary:AuthorizedClientKeys:0"] = listed.PublicKey.ToString() };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var logs = new FakeLoggerProvider();
        using var cache = new ReadSignallingCache();
        var services = new ServiceCollection();
        services.AddSingleton<IOptionsMonitorCache<OssuaryServerOptions>>(cache);
        services.AddLogging(logging => logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        services.AddOssuaryServer(configuration.GetSection("Ossuary")).Configure(o => o.Identity = serverKey);
        using ServiceProvider provider = services.BuildServiceProvider();
        var monitor = provider.GetRequiredService<IOptionsMonitor<OssuaryServerOptions>>();
        OssuaryServerOptions first = monitor.Get(Options.DefaultName); // the monitor follows the reloads from here on

        // Registered after the monitor and before the follower, so called between the two (last registered,
        // first called): it holds the reload, and the monitor with it, until the follower has read.
        using IDisposable between = ChangeToken.OnChange(configuration.GetReloadToken, cache.WaitForTheNextRead);
        using var source = new ServerPlanSource(first, monitor,
            (provider.GetServices<IOptionsChangeTokenSource<OssuaryServerOptions>>(), cache), Options.DefaultName,
            provider.GetRequiredService<ILoggerFactory>(), null, provider.GetRequiredService<FollowedKeyFiles>());

        string file = Path.Combine(_folder, "authorized_keys");
        settings["Ossuary:AuthorizedKeysFile"] = file; // not there yet: the validator refuses the change
        MutableSource.ReloadAsAFileWould(configuration);
        Assert.True(cache.ReadWhileHeld, "the follower did not read the options while the reload was held");

        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloadFailed).Count > 0);
        Assert.Equal(LogLevel.Error, Records(logs, OptionsReloadFailed)[0].Level);

        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(filed.PublicKey)]); // the deployment catches up
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloaded).Count > 0);
        SharedPlan plan = source.Hold()!;
        try
        {
            Assert.Equal(2, plan.Plan.AdmittedKeyCount); // the listed key and the file's
        }
        finally
        {
            plan.Release();
        }
    }

    /// <summary>The monitor's cache, which tells a listener that holds the reload when the options have been read meanwhile.</summary>
    private sealed class ReadSignallingCache : IOptionsMonitorCache<OssuaryServerOptions>, IDisposable
    {
        private readonly OptionsCache<OssuaryServerOptions> _inner = new();
        private readonly ManualResetEventSlim _read = new();
        private volatile bool _holding;

        /// <summary>Whether the options were read while <see cref="WaitForTheNextRead"/> held the reload.</summary>
        public bool ReadWhileHeld { get; private set; }

        /// <summary>Holds the reloading thread until someone reads the options (or the test's time is up).</summary>
        public void WaitForTheNextRead()
        {
            _holding = true;
            ReadWhileHeld = _read.Wait(TestTimeout.Default);
            _holding = false;
        }

        public OssuaryServerOptions GetOrAdd(string? name, Func<OssuaryServerOptions> createOptions)
        {
            OssuaryServerOptions options = _inner.GetOrAdd(name, createOptions);
            if (_holding)
            {
                _read.Set();
            }

            return options;
        }

        public bool TryAdd(string? name, OssuaryServerOptions options) => _inner.TryAdd(name, options);

        public bool TryRemove(string? name) => _inner.TryRemove(name);

        public void Clear() => _inner.Clear();

        public void Dispose() => _read.Dispose();
    }
}
