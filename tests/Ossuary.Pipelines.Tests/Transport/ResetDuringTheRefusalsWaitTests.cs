using System.Buffers;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A server that refused a client (its allow-list said no) or failed before its handshake (its
/// <see cref="OssuaryServerOptions.IdentitySelector"/> threw) waits for the client to close its end after its
/// Disconnect (error). A client that resets instead may never have read that Disconnect: the server must say
/// so (event 5 at Debug, the peer's doing), as its established connection's wait does of a reset
/// (ResetDuringTheServersWaitTests). Both waits, under <c>UseOssuary</c> and in an <see cref="OssuaryStream"/>,
/// ended in silence.
/// </summary>
public class ResetDuringTheRefusalsWaitTests
{
    private const int ConnectionFailed = 5;

    [Fact]
    public Task UseOssuaryServersWhoseRefusedClientsResetSaySo() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var stranger = OssuaryIdentity.Generate();
        var refusingLogs = new FakeLoggerProvider();
        var failingLogs = new FakeLoggerProvider();
        await using OssuaryTestServer refusing = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = keys.Server;
            o.AuthorizedClientKeys.Add(stranger.PublicKey);
        }, OssuaryTestServer.LogTo(refusingLogs));
        await using OssuaryTestServer failing = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
            o.IdentitySelector = _ => throw new InvalidOperationException("the key vault is down");
        }, OssuaryTestServer.LogTo(failingLogs));

        using SessionSocketPeer refused = await SessionSocketPeer.ConnectClientAsync(refusing.EndPoint, keys);
        using SessionSocketPeer failed = await SendClientHandshakeAsync(await RawPeer.ConnectAsync(failing.EndPoint), keys);
        await ReadRefusalAndResetAsync(refused);
        await ReadRefusalAndResetAsync(failed);

        AssertResetLogged(await WaitForAsync(refusingLogs));
        AssertResetLogged(await WaitForAsync(failingLogs));
    });

    [Fact]
    public Task OssuaryStreamServersWhoseRefusedClientsResetSaySo() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var stranger = OssuaryIdentity.Generate();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);

        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        var refusing = new OssuaryServerOptions { Identity = keys.Server, LoggerFactory = loggers };
        refusing.AuthorizedClientKeys.Add(stranger.PublicKey);
        Task serving = ServeAsync(serverSide, refusing);
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        options.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var refused = new SessionSocketPeer(clientSide.Socket, new OssuarySession(options));
        await refused.HandshakeAsync();
        await ReadRefusalAndResetAsync(refused);
        await serving;
        AssertResetLogged(Assert.Single(LogRecords.Records(logs, ConnectionFailed)));

        logs.Collector.Clear();
        (serverSide, clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        var failing = new OssuaryServerOptions { IdentitySelector = _ => throw new InvalidOperationException("the key vault is down"), LoggerFactory = loggers };
        failing.AuthorizedClientKeys.Add(keys.Client.PublicKey);
        using SessionSocketPeer failed = await SendClientHandshakeAsync(clientSide.Socket, keys);
        serving = ServeAsync(serverSide, failing);
        await ReadRefusalAndResetAsync(failed);
        await serving;
        AssertResetLogged(Assert.Single(LogRecords.Records(logs, ConnectionFailed)));
    });

    /// <summary>A client that sent its ClientHandshake, as one of a failing IdentitySelector's server has (nothing comes back but the Disconnect).</summary>
    private static async Task<SessionSocketPeer> SendClientHandshakeAsync(Socket socket, MutualKeys keys)
    {
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        options.AuthorizedKeys.Add(keys.Server.PublicKey);
        var client = new SessionSocketPeer(socket, new OssuarySession(options));
        var clientHandshake = new ArrayBufferWriter<byte>();
        client.Session.WriteHandshake(clientHandshake);
        await socket.SendAsync(clientHandshake.WrittenMemory, SocketFlags.None).AsTask().Within();
        return client;
    }

    /// <summary>Reads the server's Disconnect (error): the server's wait has begun. Then resets rather than closing its end.</summary>
    private static async Task ReadRefusalAndResetAsync(SessionSocketPeer client)
    {
        (_, OssuaryErrorReason ended) = await client.ReadUntilEndedAsync();
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, ended);
        client.Socket.LingerState = new LingerOption(true, 0);
        client.Socket.Close();
    }

    /// <summary>A server as its caller writes one: the stream is disposed as the handshake fails.</summary>
    private static async Task ServeAsync(NetworkStream inner, OssuaryServerOptions options)
    {
        await using var server = new OssuaryStream(inner);
        await Assert.ThrowsAsync<OssuaryException>(() => server.AuthenticateAsServerAsync(options)).Within();
    }

    /// <summary>The server's event 5, once it is logged (the wait ends at the reset, or after 5 s without one).</summary>
    private static Task<FakeLogRecord> WaitForAsync(FakeLoggerProvider logs) => Task.Run(async () =>
    {
        while (true)
        {
            if (logs.Collector.GetSnapshot().FirstOrDefault(r => r.Id.Id == ConnectionFailed) is { } logged)
            {
                return logged;
            }

            await Task.Delay(10);
        }
    }).Within();

    private static void AssertResetLogged(FakeLogRecord logged)
    {
        Assert.Equal(LogLevel.Debug, logged.Level);
        OssuaryException said = Assert.IsType<OssuaryException>(logged.Exception);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, said.Reason);
        Assert.Contains("reset the connection after this side's Disconnect", said.Message, StringComparison.Ordinal);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
