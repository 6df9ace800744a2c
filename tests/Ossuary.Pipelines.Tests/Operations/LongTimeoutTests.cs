using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A timeout the options accept works: validation takes any positive length, so one longer than the
/// system's timers can take (about 49.7 days, e.g. a "wait as good as forever" setting) must not
/// pass start-up and then fail every connection.
/// </summary>
public class LongTimeoutTests
{
    [Fact]
    public async Task AConnectTimeoutLongerThanTimersTakeConnects()
    {
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(keys.Server, keys.Client);
        OssuaryClientOptions options = keys.ClientOptions();
        options.ConnectTimeout = TimeSpan.FromDays(60);
        using var factory = new OssuaryConnectionFactory(options); // accepted: validation passes

        await using ConnectionContext connection = await factory.ConnectAsync(server.EndPoint).AsTask().Within();
        using Socket socket = await OssuaryClient.ConnectSocketAsync(server.EndPoint, TimeSpan.MaxValue).Within();

        Assert.NotNull(connection.Features.Get<IOssuaryConnectionFeature>());
        Assert.True(socket.Connected);
    }

    [Fact]
    public async Task TheLongestHandshakeStepTimeoutHandshakesOnBothSides()
    {
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            keys.ConfigureServer(o, OssuaryServerOptions.DefaultHandshakeTimeout);
            o.HandshakeStepTimeout = TimeSpan.MaxValue;
        });
        OssuaryClientOptions options = keys.ClientOptions();
        options.HandshakeStepTimeout = TimeSpan.MaxValue;
        options.HandshakeTimeout = TimeSpan.MaxValue;

        // Both failed every handshake with an OverflowException, reported as this side's fault.
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options).Within();
        await connection.Transport.Output.WriteAsync("echo"u8.ToArray());

        Assert.Equal("echo"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 4).Within());
    }
}
