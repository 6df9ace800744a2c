using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
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
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                // Outside UseOssuary: returns once the secure connection has been disposed.
                listen.Use(next => async connection =>
                {
                    try
                    {
                        await next(connection);
                    }
                    finally
                    {
                        disposed.TrySetResult();
                    }
                });
                listen.UseOssuary(o =>
                {
                    o.Identity = keys.Server;
                    o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
                });
                listen.Run(async connection =>
                {
                    System.IO.Pipelines.ReadResult first = await connection.Transport.Input.ReadAsync();
                    connection.Transport.Input.AdvanceTo(first.Buffer.End);
                    await connection.Transport.Output.WriteAsync("bye"u8.ToArray());
                });
            }),
            builder => OssuaryTestServer.LogTo(logs)(builder.Services));

        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        clientOptions.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var client = new SessionSocketPeer(await RawPeer.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port())), new OssuarySession(clientOptions));
        await client.HandshakeAsync();

        // More than Kestrel's buffers take: unread when the server says goodbye, so it waits for the client's close.
        byte[] frame = new byte[OssuarySession.MaxPlaintextLength];
        _ = client.SendTogetherAsync([.. Enumerable.Range(0, 256).Select(_ => client.DataPacket(frame))]);

        // The server's last frame and Disconnect reach the client's socket, and are left unread: its close sends a reset.
        int expected = 3 + OssuarySession.DataPacketOverhead + Wire.Control(Wire.Disconnect, error: false).Length;
        await Task.Run(async () =>
        {
            while (client.Socket.Available < expected)
            {
                await Task.Delay(10);
            }
        }).Within();
        client.Socket.Close();

        await disposed.Task.Within();
        Microsoft.Extensions.Logging.Testing.FakeLogRecord failed = Assert.Single(LogRecords.Records(logs, 5));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, failed.Level);
        Assert.Contains("reset the connection after this side's Disconnect", failed.Exception?.Message);
    }
}
