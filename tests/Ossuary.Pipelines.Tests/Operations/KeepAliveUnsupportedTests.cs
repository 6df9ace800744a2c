using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A system without the TCP keep-alive options (<see cref="PlatformNotSupportedException"/>) costs a client
/// its keep-alive, not its connection, as it costs a server: the client connects without and says so at
/// Error (event 26, the exception inside). Keep-alive is on by default, so every connect of such a client
/// failed with the exception where its server, on the same system, logged and went on. Provoked through
/// the options' seam, as this system has every option.
/// </summary>
public class KeepAliveUnsupportedTests
{
    private const int KeepAliveNotSet = 26;

    [Fact]
    public Task AClientOnASystemWithoutTheKeepAliveOptionsConnectsWithoutAndSaysSoAtError() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using var server = await OssuaryTestServer.StartEchoAsync(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        OssuaryClientOptions options = keys.ClientOptions();
        options.LoggerFactory = loggers;
        var unsupported = new PlatformNotSupportedException("this system has no TCP_KEEPCNT");
        options.KeepAliveSetter = (_, _) => throw unsupported;

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync(new byte[] { 7 });
        Assert.Equal(7, (await connection.Transport.Input.ReadAtLeastAsync(1).AsTask().Within()).Buffer.FirstSpan[0]);

        FakeLogRecord logged = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == KeepAliveNotSet);
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.Same(unsupported, logged.Exception);
    });

    /// <summary>A refusal of the system's (a socket error) still fails the connect, as the options' documentation says.</summary>
    [Fact]
    public Task ASocketErrorSettingKeepAliveStillFailsTheConnect() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using var server = await OssuaryTestServer.StartEchoAsync(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        OssuaryClientOptions options = keys.ClientOptions();
        options.KeepAliveSetter = (_, _) => throw new SocketException((int)SocketError.InvalidArgument);

        SocketException failed = await Assert.ThrowsAsync<SocketException>(() => OssuaryClient.ConnectAsync(server.EndPoint, options));
        Assert.Equal(SocketError.InvalidArgument, failed.SocketErrorCode);
    });

    private static Task Run(Func<Task> test) => test().Within();
}
