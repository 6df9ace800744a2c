using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A UseOssuary server that said goodbye waits for a client still sending to close its end (see
/// ServerClosingFirstTests). A client that resets instead, its socket closed with the server's last
/// bytes and Disconnect unread, never got them: the server must say so, not end as if all went.
/// </summary>
public class ResetDuringTheServersWaitTests
{
    [Fact]
    public async Task AClientThatResetsWithTheServersLastBytesUnreadIsLoggedAsAFailedConnection()
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using ByeServer server = await ByeServer.StartAsync(keys, logs);
        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(server.Endpoint, keys);

        // More than Kestrel's buffers take: unread when the server says goodbye, so it waits for the client's close.
        byte[] frame = new byte[OssuarySession.MaxPlaintextLength];
        _ = client.SendTogetherAsync([.. Enumerable.Range(0, 256).Select(_ => client.DataPacket(frame))]);

        // The server's last frame and Disconnect reach the client's socket, and are left unread: its close sends a reset.
        int expected = 3 + OssuarySession.DataPacketOverhead + Wire.Control(Wire.Disconnect, error: false).Length;
        await client.WaitUntilUnreadAsync(expected);
        client.Socket.Close();

        await server.Disposed.Within();
        FakeLogRecord failed = Assert.Single(LogRecords.Records(logs, 5));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, failed.Level);
        Assert.Contains("reset the connection after this side's Disconnect", failed.Exception?.Message);
    }
}
