using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A server's own failures (a throwing callback, a disposed identity) are logged at Error with
/// their exception, once per cause, and the client is told with Disconnect (error); failures a
/// peer causes stay at Debug.
/// </summary>
public class ServerFaultLoggingTests
{
    private const int HandshakeFailed = 3;
    private const int HandshakeFaulted = 6;
    private const int ConnectionFailed = 5;
    private const int ConnectionFaulted = 7;

    [Fact]
    public Task AThrowingAuthorizeClientIsLoggedAsErrorOnceAndTheClientSeesADisconnect() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizeClient = (_, _, _) => throw new InvalidOperationException("the device database is down");
        }, OssuaryTestServer.LogTo(logs));
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        for (int attempt = 0; attempt < 2; attempt++)
        {
            // The client is established once its ClientAuthentication is out; the server's answer comes as the first read.
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
            var failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(connection.Transport.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason); // a Disconnect (error), not Truncated
        }

        await HostilePeerTests.WaitForAsync(() => Faults(logs).Count == 2);
        List<FakeLogRecord> faults = Faults(logs);
        Assert.Equal([LogLevel.Error, LogLevel.Debug], faults.Select(r => r.Level)); // the same cause again within the minute: Debug
        Assert.All(faults, r => Assert.Equal("the device database is down", Assert.IsType<InvalidOperationException>(r.Exception).Message));
        Assert.Contains("AuthorizeClient", faults[0].Message);
        Assert.DoesNotContain(OssuaryRecords(logs), r => r.Id.Id == HandshakeFailed);
    });

    [Fact]
    public Task ADisposedServerIdentityIsLoggedAsErrorAndTheClientSeesADisconnect() => Run(async () =>
    {
        var serverKey = OssuaryIdentity.Generate();
        OssuaryPublicKey serverPublic = serverKey.PublicKey;
        using var clientKey = OssuaryIdentity.Generate();
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        }, OssuaryTestServer.LogTo(logs));
        serverKey.Dispose(); // the application's mistake: the server outlives its identity
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverPublic);

        var failed = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(server.EndPoint, options));

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason); // before: Truncated, the server just hung up
        await HostilePeerTests.WaitForAsync(() => Faults(logs).Count == 1);
        FakeLogRecord fault = Assert.Single(Faults(logs));
        Assert.Equal(LogLevel.Error, fault.Level);
        Assert.IsType<ObjectDisposedException>(fault.Exception);
    });

    [Fact]
    public Task AnUnknownClientIsThePeersFailureAndStaysAtDebug() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listed = OssuaryIdentity.Generate();
        using var stranger = OssuaryIdentity.Generate();
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(listed.PublicKey);
        }, OssuaryTestServer.LogTo(logs));
        var options = new OssuaryClientOptions { Identity = stranger };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options))
        {
            await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(connection.Transport.Input));
        }

        await HostilePeerTests.WaitForAsync(() => OssuaryRecords(logs).Any(r => r.Id.Id == HandshakeFailed));
        Assert.Equal(LogLevel.Debug, OssuaryRecords(logs).Single(r => r.Id.Id == HandshakeFailed).Level);
        Assert.DoesNotContain(OssuaryRecords(logs), r => r.Level >= LogLevel.Warning);
    });

    [Fact]
    public Task AHandlerThatCompletesItsInputWithAnErrorEndsTheConnectionAndIsNotLoggedAsOurFault() => Run(async () =>
    {
        // The application's own failure, which it reports itself: as Output.Complete(exception) is,
        // it ends the connection (the client gets Disconnect (error)) and is logged at Debug (event 5)
        // saying so. Before, the pipe's throw reached the inbound loop as an unexpected exception:
        // Error (event 7) as a fault of the library's, with the handler's exception as its "cause".
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartAsync<FailingReaderConnectionHandler>(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        }, OssuaryTestServer.LogTo(logs));
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options))
        {
            await connection.Transport.Output.WriteAsync("hello"u8.ToArray());
            Assert.Equal("done"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 4));
            await connection.Transport.Output.WriteAsync("anyone there?"u8.ToArray()); // reaches the input the handler completed
            var failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(connection.Transport.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        }

        await HostilePeerTests.WaitForAsync(() => OssuaryRecords(logs).Any(r => r.Id.Id is ConnectionFailed or ConnectionFaulted));
        FakeLogRecord ended = Assert.Single(OssuaryRecords(logs), r => r.Id.Id is ConnectionFailed or ConnectionFaulted);
        Assert.Equal(ConnectionFailed, ended.Id.Id);
        Assert.Equal(LogLevel.Debug, ended.Level);
        Assert.Contains("completed the input", ended.Exception?.Message);
        Assert.Equal(FailingReaderConnectionHandler.Failure, ended.Exception?.InnerException?.Message);
        Assert.DoesNotContain(OssuaryRecords(logs), r => r.Level >= LogLevel.Warning);
    });

    private static List<FakeLogRecord> OssuaryRecords(FakeLoggerProvider logs) =>
        [.. logs.Collector.GetSnapshot().Where(r => (r.Category ?? "").StartsWith("Ossuary", StringComparison.Ordinal))];

    private static List<FakeLogRecord> Faults(FakeLoggerProvider logs) => [.. OssuaryRecords(logs).Where(r => r.Id.Id == HandshakeFaulted)];

    private static Task Run(Func<Task> test) => test().Within();
}
