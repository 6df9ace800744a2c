using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;
using Ossuary.Samples.Telemetry.Keys;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>The telemetry sample end to end: a generated fleet, the real server on loopback, the real load generator.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetrySampleTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120); // a hang guard: one run under load 8 needed more than 60 s

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task EveryReadingOfEveryDeviceIsCountedUnderItsProvenKey() => CountEveryReadingAsync().WaitAsync(HardLimit);

    [Fact]
    public Task ADeviceMissingFromTheAllowListIsRefusedAndNeverCounted() => RefuseUnlistedDeviceAsync().WaitAsync(HardLimit);

    // A device key no device can prove (the anonymous key, all zeros; say, a placeholder line left in
    // devices.keys) admits nobody: refused at start-up, not found out when that device is refused.
    [Theory]
    [InlineData("0100000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task AnAuthorizedDeviceKeyNoDeviceCanProveIsRefusedAtStartUp(string unprovable)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();

        InvalidOperationException refused = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
            {
                Identity = serverKey,
                AuthorizedDevices = [device.PublicKey, OssuaryPublicKey.Parse(unprovable, null)],
                DatabasePath = Path.Combine(_directory, "telemetry.db"),
            });
        });

        Assert.Contains(unprovable, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public Task ConnectionsPastTheLimitAreRefusedUntilOneCloses() => ConnectionLimitAsync().WaitAsync(HardLimit);

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public async Task AConnectionLimitBelowOneIsRefusedAtStartUp(int limit)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            DatabasePath = Path.Combine(_directory, "telemetry.db"),
            MaxConnections = limit,
        }));
    }

    [Theory]
    [InlineData(1, 0)] // its one reading flushed before the refusal arrives, as a rule
    [InlineData(2, 1000)] // its second reading flushed after it: the flush finds the connection ended
    public async Task ADeviceTheServerRefusesIsReportedFailedByTheLoadGenerator(int readings, int intervalMs)
    {
        // The allow-list is applied after the handshake: the device's connect succeeds, and the
        // refusal (Disconnect with error) arrives while it sends. Either way the device reports the
        // server's reason, not a flush that found the connection ended (a loaded CI run had the
        // refusal arrive before the one reading's flush: ConnectionClosed).
        using var serverKey = OssuaryIdentity.Generate();
        using var listed = OssuaryIdentity.Generate();
        using var stranger = OssuaryIdentity.Generate();
        await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [listed.PublicKey],
            DatabasePath = Path.Combine(_directory, "telemetry.db"),
        });

        LoadResult result = await LoadGenerator.RunAsync(new LoadOptions
        {
            Server = server.EndPoint,
            ServerKey = serverKey.PublicKey,
            Devices = [stranger],
            ReadingsPerDevice = readings,
            Interval = TimeSpan.FromMilliseconds(intervalMs),
        }).WaitAsync(HardLimit);

        Assert.Empty(server.Registry.Snapshot());
        Assert.Equal(1, result.Failed);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, Assert.IsType<OssuaryException>(Assert.Single(result.Devices).Error).Reason);
    }

    [Fact]
    public void LinesSplitAcrossSegmentsParseAndMalformedOnesDoNot()
    {
        byte[] bytes = Encoding.ASCII.GetBytes("sensor=temp value=21.5 ts=1718000000000\r\nvalue=-3\nsensor=x value=abc\nsensor=y\npartial value=1");
        ReadOnlySequence<byte> buffer = SegmentedSequence.Create(bytes.Chunk(5).Select(chunk => (ReadOnlyMemory<byte>)chunk));
        var parsed = new List<string>();
        byte[] scratch = new byte[ReadingParser.MaxLineLength];
        while (ReadingParser.TryReadLine(ref buffer, out ReadOnlySequence<byte> line))
        {
            parsed.Add(ReadingParser.TryParse(line, scratch, out Reading reading)
                ? $"{Encoding.ASCII.GetString(reading.Sensor)}|{reading.Value}|{reading.TimestampMs}"
                : "rejected");
        }

        Assert.Equal(["temp|21.5|1718000000000", "|-3|", "rejected", "rejected"], parsed);
        Assert.Equal("partial value=1", Encoding.ASCII.GetString(buffer.ToArray())); // no newline yet: left for the next read
    }

    private async Task ConnectionLimitAsync()
    {
        const int Limit = 2;
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        OssuaryIdentity[] devices = [OssuaryIdentity.Generate(), OssuaryIdentity.Generate(), OssuaryIdentity.Generate()];
        try
        {
            await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
            {
                Identity = serverKey,
                AuthorizedDevices = devices.Select(device => device.PublicKey).ToList(),
                DatabasePath = Path.Combine(_directory, "telemetry.db"),
                MaxConnections = Limit,
                MetricsPort = 0,
            });
            var open = new List<OssuaryClientConnection>();
            try
            {
                for (int i = 0; i < Limit; i++)
                {
                    open.Add(await OssuaryClient.ConnectAsync(server.EndPoint, ClientOptions(devices[i], serverKey), budget.Token));
                }

                while (server.Registry.Snapshot().Count(device => device.Connections > 0) < Limit)
                {
                    await Task.Delay(10, budget.Token);
                }

                // One more is closed by Kestrel before any handshake: the client learns it from the handshake.
                await Assert.ThrowsAsync<OssuaryException>(async () =>
                {
                    await using OssuaryClientConnection refused = await OssuaryClient.ConnectAsync(server.EndPoint, ClientOptions(devices[Limit], serverKey), budget.Token);
                });

                // Kestrel counts per endpoint: a full device port still lets Prometheus scrape.
                using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) })
                {
                    Assert.Contains("telemetry_devices_connected", await http.GetStringAsync(new Uri($"http://{server.MetricsEndPoint}/metrics"), budget.Token), StringComparison.Ordinal);
                }

                // A freed place admits the next device (once Kestrel has counted the closed connection out).
                await open[0].DisposeAsync();
                open.RemoveAt(0);
                OssuaryClientConnection? admitted = null;
                while (admitted is null)
                {
                    try
                    {
                        admitted = await OssuaryClient.ConnectAsync(server.EndPoint, ClientOptions(devices[Limit], serverKey), budget.Token);
                    }
                    catch (OssuaryException)
                    {
                        await Task.Delay(50, budget.Token);
                    }
                }

                open.Add(admitted);
                await admitted.Transport.Output.WriteAsync("sensor=temp value=1 seq=1\n"u8.ToArray(), budget.Token);
                while (server.Registry.Find(devices[Limit].PublicKey)?.Readings is not 1)
                {
                    await Task.Delay(10, budget.Token);
                }
            }
            finally
            {
                foreach (OssuaryClientConnection connection in open)
                {
                    await connection.DisposeAsync();
                }
            }
        }
        finally
        {
            foreach (OssuaryIdentity device in devices)
            {
                device.Dispose();
            }
        }
    }

    private static OssuaryClientOptions ClientOptions(OssuaryIdentity device, OssuaryIdentity serverKey)
    {
        var options = new OssuaryClientOptions { Identity = device };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        return options;
    }

    private async Task CountEveryReadingAsync()
    {
        const int FleetSize = 120;
        const int Devices = 100;
        const int Readings = 40;
        using var budget = new CancellationTokenSource(HardLimit);
        Fleet fleet = Fleet.Generate(_directory, FleetSize);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(fleet.ServerKeyPath));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(fleet.DevicesDirectory, "device-0000.key")));
        }

        using OssuaryIdentity serverKey = KeyFiles.ReadSecretKey(fleet.ServerKeyPath);
        IReadOnlyList<OssuaryPublicKey> authorized = OssuaryAuthorizedKeys.Load(fleet.AuthorizedKeysPath);
        Assert.Equal(FleetSize, authorized.Count);
        await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Address = IPAddress.Loopback,
            Identity = serverKey,
            AuthorizedDevices = authorized.ToList(),
            DatabasePath = Path.Combine(_directory, "telemetry.db"),
        });

        IReadOnlyList<OssuaryIdentity> devices = fleet.LoadDevices(Devices);
        try
        {
            LoadResult result = await LoadGenerator.RunAsync(new LoadOptions
            {
                Server = server.EndPoint,
                ServerKey = fleet.LoadServerPublicKey(),
                Devices = devices,
                ReadingsPerDevice = Readings,
                Interval = TimeSpan.FromMilliseconds(2),
            }, cancellationToken: budget.Token);

            Assert.All(result.Devices, run => Assert.Null(run.Error));
            Assert.Equal(Devices * Readings, result.ReadingsSent);

            // Each device disconnected cleanly; wait until the server has finished every connection.
            while (server.Registry.SessionsEnded < Devices)
            {
                await Task.Delay(10, budget.Token);
            }

            IReadOnlyList<DeviceSnapshot> counted = server.Registry.Snapshot();
            Assert.Equal(devices.Select(device => device.PublicKey).OrderBy(key => key.ToString(), StringComparer.Ordinal), counted.Select(device => device.Key));
            Assert.All(counted, device =>
            {
                Assert.Equal(Readings, device.Readings);
                Assert.Equal(0, device.Rejected);
                Assert.Equal(0, device.Connections);
                Assert.Equal(1, device.Sessions);
                Assert.NotNull(device.LastSensor);
                Assert.Equal(0, device.Gaps);
                Assert.Equal(0, device.Repeats);
            });
        }
        finally
        {
            foreach (OssuaryIdentity device in devices)
            {
                device.Dispose();
            }
        }
    }

    private async Task RefuseUnlistedDeviceAsync()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listed = OssuaryIdentity.Generate();
        using var stranger = OssuaryIdentity.Generate();
        using var log = new FakeLoggerProvider();
        await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [listed.PublicKey],
            DatabasePath = Path.Combine(_directory, "telemetry.db"),
            LoggerProvider = log,
        });
        var options = new OssuaryClientOptions { Identity = stranger };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await Assert.ThrowsAsync<OssuaryException>(async () =>
        {
            // The server may refuse during the handshake or right after it; either way nothing gets through.
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
            await connection.Transport.Output.WriteAsync("sensor=temp value=1\n"u8.ToArray());
            ReadResult read = await connection.Transport.Input.ReadAsync();
            Assert.Fail($"the server kept an unlisted device's connection open (completed: {read.IsCompleted})");
        });

        Assert.Empty(server.Registry.Snapshot());

        // The operator sees it: how often, and the key to add if the device is new.
        Assert.Equal([(stranger.PublicKey, 1L)], server.Registry.Refused());
        using var output = new StringWriter();
        new SummaryReporter(server.Registry, output).Report();
        Assert.Contains("refused 1 handshake(s) from 1 key(s) not in the authorized keys:", output.ToString(), StringComparison.Ordinal);
        Assert.Contains($"  {stranger.PublicKey}  1 time(s)", output.ToString(), StringComparison.Ordinal);

        // And the log says so once, with the key, at a level an operator's default log shows.
        FakeLogRecord refusal = Assert.Single(log.Collector.GetSnapshot(), record => record.Id.Id == 1720);
        Assert.Equal(LogLevel.Warning, refusal.Level);
        Assert.Contains(stranger.PublicKey.ToString(), refusal.Message, StringComparison.Ordinal);
    }
}
