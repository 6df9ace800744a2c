using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>Issue 14, item 5: the client logs, meters and traces its handshakes where it is told to.</summary>
public sealed class ClientTelemetryTests : IDisposable
{
    private readonly ConcurrentQueue<Activity> _handshakes = new();
    private readonly ActivityListener _listener;
    private readonly ServiceProvider _telemetry;
    private readonly FakeLoggerProvider _logs = new();

    public ClientTelemetryTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == OssuaryTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _handshakes.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddLogging(logging => logging.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        _telemetry = services.BuildServiceProvider();
    }

    private ILoggerFactory LoggerFactory => _telemetry.GetRequiredService<ILoggerFactory>();

    private IMeterFactory MeterFactory => _telemetry.GetRequiredService<IMeterFactory>();

    public void Dispose()
    {
        _listener.Dispose();
        _telemetry.Dispose();
    }

    [Fact]
    public async Task OssuaryClientLogsMetersAndTracesItsHandshakeOnBothSides()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        using var durations = new MetricCollector<double>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.handshake.duration");
        using var sent = new MetricCollector<long>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.bytes_sent");
        OssuaryClientOptions options = Telemetered(Echo.ClientOptions(clientKey, serverKey.PublicKey));

        string connectionId;
        await using (OssuaryClientConnection connection = await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), options))
        {
            connectionId = connection.ConnectionId;
        }

        FakeLogRecord completed = Assert.Single(_logs.Collector.GetSnapshot(), r => r.Id.Id == 2);
        Assert.Equal("Ossuary.Pipelines.Client", completed.Category);
        Assert.Equal(connectionId, completed.GetStructuredStateValue("ConnectionId")); // the id its user sees
        Assert.Contains(serverKey.PublicKey.ToString(), completed.Message);
        CollectedMeasurement<double> duration = Assert.Single(durations.GetMeasurementSnapshot());
        Assert.Equal("client", duration.Tags["ossuary.role"]);
        Assert.Equal("success", duration.Tags["ossuary.outcome"]);
        Assert.Equal(4, sent.GetMeasurementSnapshot().Sum(m => m.Value)); // "ping"

        Activity client = await HandshakeSpanAsync(serverKey.PublicKey);
        Assert.Equal(ActivityKind.Client, client.Kind);
        Assert.Equal("client", client.GetTagItem("ossuary.role"));
        Assert.Equal("success", client.GetTagItem("ossuary.outcome"));
        Assert.True(client.Duration > TimeSpan.Zero);
        Activity server = await HandshakeSpanAsync(clientKey.PublicKey);
        Assert.Equal(ActivityKind.Server, server.Kind);
        Assert.Equal("server", server.GetTagItem("ossuary.role"));
    }

    [Fact]
    public async Task AFailedClientHandshakeIsAnErrorSpanAFailureMeasurementAndADebugLog()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var otherKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        using var durations = new MetricCollector<double>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.handshake.duration");

        await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), Telemetered(Echo.ClientOptions(clientKey, otherKey.PublicKey))).Within());

        Assert.Equal(nameof(OssuaryErrorReason.UntrustedServer), Assert.Single(durations.GetMeasurementSnapshot()).Tags["error.type"]);
        FakeLogRecord failed = Assert.Single(_logs.Collector.GetSnapshot(), r => r.Id.Id == 3);
        Assert.Equal(LogLevel.Debug, failed.Level);
        Activity span = await HandshakeSpanAsync(serverKey.PublicKey);
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal("failure", span.GetTagItem("ossuary.outcome"));
        Assert.Equal(nameof(OssuaryErrorReason.UntrustedServer), span.GetTagItem("error.type"));
    }

    [Fact]
    public async Task AHandshakeItsCallerCancelledIsCountedAsCancelledNotAsAFailure()
    {
        // A server that accepts and never answers; the caller gives up on its own token once the
        // handshake is under way (its first packet arrived). A timer instead could fire while a loaded
        // machine was still connecting the socket: no handshake, so nothing to count.
        using var serverKey = OssuaryIdentity.Generate();
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        Task<Socket> accepted = silent.AcceptSocketAsync();
        using var durations = new MetricCollector<double>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.handshake.duration");
        using var parent = new Activity("test").Start(); // this test's span, among every test's
        using var giveUp = new CancellationTokenSource();
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        Task<OssuaryClientConnection> connect = OssuaryClient.ConnectAsync(silent.LocalEndpoint, Telemetered(options), giveUp.Token);
        using Socket silentEnd = await accepted.Within();
        Assert.True(await silentEnd.ReceiveAsync(new byte[1]).Within() > 0, "the client closed before its first handshake packet");
        giveUp.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connect.Within());
        parent.Stop();

        CollectedMeasurement<double> duration = Assert.Single(durations.GetMeasurementSnapshot());
        Assert.Equal("cancelled", duration.Tags["ossuary.outcome"]);
        Assert.False(duration.Tags.ContainsKey("error.type"));
        FakeLogRecord cancelled = Assert.Single(_logs.Collector.GetSnapshot(), r => r.Id.Id == 8);
        Assert.Equal(LogLevel.Debug, cancelled.Level);
        Assert.DoesNotContain(_logs.Collector.GetSnapshot(), r => r.Id.Id == 3);
        Activity span = Assert.Single(_handshakes, a => a.ParentSpanId == parent.SpanId);
        Assert.Equal("cancelled", span.GetTagItem("ossuary.outcome"));
        Assert.Equal(ActivityStatusCode.Unset, span.Status);
    }

    [Fact]
    public async Task OssuaryStreamAndOssuaryDuplexPipeReportThroughTheirOptionsToo()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        using var durations = new MetricCollector<double>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.handshake.duration");
        OssuaryClientOptions options = Telemetered(Echo.ClientOptions(clientKey, serverKey.PublicKey));

        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
            await using var stream = new OssuaryStream(tcp.GetStream());
            await stream.AuthenticateAsClientAsync(options).Within();
        }

        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
            NetworkStream network = tcp.GetStream();
            var transport = new StreamPipe(network);
            await using OssuaryDuplexPipe pipe = await OssuaryDuplexPipe.ConnectAsync(transport, options).Within();
        }

        Assert.Equal(2, durations.GetMeasurementSnapshot().Count(m => (string?)m.Tags["ossuary.role"] == "client"));
        Assert.Equal(2, _logs.Collector.GetSnapshot().Count(r => r.Id.Id == 2 && r.Category == "Ossuary.Pipelines.Client"));
        Assert.Equal(2, (await HandshakeSpansAsync(serverKey.PublicKey, 2)).Count);
    }

    [Fact]
    public async Task FramesAndBytesAreCountedEachWay()
    {
        // README, Metrics: ossuary.frames_sent/_received count EncryptedData packets, bytes_sent/_received their plaintext.
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        using var framesSent = new MetricCollector<long>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.frames_sent");
        using var framesReceived = new MetricCollector<long>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.frames_received");
        using var bytesSent = new MetricCollector<long>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.bytes_sent");
        using var bytesReceived = new MetricCollector<long>(MeterFactory, OssuaryTelemetry.MeterName, "ossuary.bytes_received");
        byte[] message = new byte[40_000]; // one write, one flush: sealed as 16,384 + 16,384 + 7,232
        Random.Shared.NextBytes(message);

        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), Telemetered(Echo.ClientOptions(clientKey, serverKey.PublicKey))).Within())
        {
            Task<byte[]> echoed = PipeReads.ReadExactlyAsync(connection.Transport.Input, message.Length);
            await connection.Transport.Output.WriteAsync(message).Within();
            Assert.Equal(message, await echoed.Within());
        }

        Assert.Equal(3, framesSent.GetMeasurementSnapshot().Sum(m => m.Value));
        Assert.Equal(message.Length, bytesSent.GetMeasurementSnapshot().Sum(m => m.Value));
        Assert.Equal(message.Length, bytesReceived.GetMeasurementSnapshot().Sum(m => m.Value));
        Assert.InRange(framesReceived.GetMeasurementSnapshot().Sum(m => m.Value), 3, message.Length); // the echo's writes are the server's to cut
        Assert.All(framesSent.GetMeasurementSnapshot(), m => Assert.Empty(m.Tags)); // untagged, as documented
    }

    private OssuaryClientOptions Telemetered(OssuaryClientOptions options)
    {
        options.LoggerFactory = LoggerFactory;
        options.MeterFactory = MeterFactory;
        return options;
    }

    /// <summary>The span of the handshake that met <paramref name="remote"/> (other tests' spans reach the listener too).</summary>
    private async Task<Activity> HandshakeSpanAsync(OssuaryPublicKey remote) => Assert.Single(await HandshakeSpansAsync(remote, 1));

    private async Task<List<Activity>> HandshakeSpansAsync(OssuaryPublicKey remote, int count)
    {
        string fingerprint = OssuaryActivity.Fingerprint(remote);
        List<Activity> Matching() => [.. _handshakes.Where(a => (string?)a.GetTagItem("ossuary.remote_key.fingerprint") == fingerprint)];
        await Transport.HostilePeerTests.WaitForAsync(() => Matching().Count >= count); // the server stops its span on its own thread
        Assert.All(Matching(), a => Assert.Equal(OssuaryActivity.HandshakeName, a.OperationName));
        return Matching();
    }

    private sealed class StreamPipe(Stream stream) : IDuplexPipe
    {
        public PipeReader Input { get; } = PipeReader.Create(stream);

        public PipeWriter Output { get; } = PipeWriter.Create(stream);
    }
}
