using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A client disposed while its server is still sending says goodbye, sends its end (FIN) and waits for
/// the server to close its own, discarding what it sends (see ClientDisposalTests). A server that
/// resets instead may never have read the client's last bytes and Disconnect: the client must say so,
/// as a UseOssuary server does of a client that resets during its wait (ResetDuringTheServersWaitTests).
/// </summary>
public class ResetDuringTheClientsWaitTests
{
    [Fact]
    public async Task AServerThatResetsWhileTheClientWaitsForItsCloseIsLoggedAsAFailedConnection()
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        OssuaryClientOptions options = keys.ClientOptions();
        options.LoggerFactory = loggers;
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys, options);
        using SessionSocketPeer serverPeer = server;

        // Far more than the client's input holds: the rest waits unread in its socket when it says goodbye,
        // so it waits for the server's close. Its input full, the inbound loop ends at disposal without
        // another read: what the socket says after that only the wait reads.
        byte[] frame = new byte[OssuarySession.MaxPlaintextLength];
        _ = server.SendTogetherAsync([.. Enumerable.Range(0, 64).Select(_ => server.DataPacket(frame))]);
        await PipeReads.WaitUntilHoldsAsync(client.Transport.Input, 4 * OssuarySession.MaxPlaintextLength);
        Task disposing = client.DisposeAsync().AsTask();

        // The client's Disconnect and its end arrive: it is waiting for the server's close. The server aborts instead.
        (_, OssuaryErrorReason said) = await server.ReadUntilEndedAsync();
        Assert.Equal(OssuaryErrorReason.ConnectionClosed, said);
        byte[] rest = new byte[1024];
        while (await server.Socket.ReceiveAsync(rest, SocketFlags.None).Within() > 0)
        {
        }

        server.Socket.LingerState = new LingerOption(true, 0);
        server.Socket.Close();

        await disposing.Within();
        FakeLogRecord failed = Assert.Single(LogRecords.Records(logs, 5));
        Assert.Equal(LogLevel.Debug, failed.Level);
        Assert.Contains("reset the connection after this side's Disconnect", failed.Exception?.Message);
    }
}
