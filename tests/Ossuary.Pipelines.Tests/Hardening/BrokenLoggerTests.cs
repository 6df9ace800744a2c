using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// A logging provider that fails (a full disk, a log sink that went away): LoggerFactory's loggers
/// throw its exception (an AggregateException) into the caller. The connection must end as it
/// would have with a working logger; a log line that cannot be written must not change what the
/// application is told, nor leave it waiting.
/// </summary>
public class BrokenLoggerTests
{
    /// <summary>
    /// The connection's end is logged (event 5) before the input is completed: a logger that threw
    /// there ended the inbound loop before it completed the input, and the application's read
    /// waited forever for a connection that was gone.
    /// </summary>
    [Fact]
    public async Task AReadStillReportsTheTruncationWhenTheLoggerThrows()
    {
        using var serverKey = OssuaryIdentity.Generate();
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        var sink = new BreakableLoggerProvider();
        using var loggers = new LoggerFactory([sink], new LoggerFilterOptions { MinLevel = LogLevel.Debug });
        await using var server = new OssuaryStream(serverSide);
        await using var client = new OssuaryStream(clientSide);
        var clientOptions = new OssuaryClientOptions { LoggerFactory = loggers };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new OssuaryServerOptions { Identity = serverKey, Mode = OssuaryServerMode.Unauthenticated }),
            client.AuthenticateAsClientAsync(clientOptions)).Within();

        await server.WriteAsync("bye"u8.ToArray());
        byte[] bye = new byte[3];
        await client.ReadExactlyAsync(bye).AsTask().Within();
        sink.Broken = true;
        serverSide.Socket.Shutdown(SocketShutdown.Both); // no Disconnect

        OssuaryException truncated = await Assert.ThrowsAsync<OssuaryException>(() => client.ReadAsync(new byte[16]).AsTask().Within());
        Assert.Equal(OssuaryErrorReason.Truncated, truncated.Reason);
    }

    /// <summary>
    /// The handshake logs as it starts: a logger that threw there failed every handshake with the
    /// provider's AggregateException, not the documented OssuaryException, and a working peer was refused.
    /// </summary>
    [Fact]
    public async Task AHandshakeSucceedsWhenTheLoggerThrows()
    {
        using var serverKey = OssuaryIdentity.Generate();
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        var sink = new BreakableLoggerProvider { Broken = true };
        using var loggers = new LoggerFactory([sink], new LoggerFilterOptions { MinLevel = LogLevel.Debug });
        await using var server = new OssuaryStream(serverSide);
        await using var client = new OssuaryStream(clientSide);
        var clientOptions = new OssuaryClientOptions { LoggerFactory = loggers };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);

        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new OssuaryServerOptions { Identity = serverKey, Mode = OssuaryServerMode.Unauthenticated, LoggerFactory = loggers }),
            client.AuthenticateAsClientAsync(clientOptions)).Within();

        await client.WriteAsync("hello"u8.ToArray());
        byte[] hello = new byte[5];
        await server.ReadExactlyAsync(hello).AsTask().Within();
        Assert.Equal("hello"u8.ToArray(), hello);
    }

    /// <summary>
    /// The server's reload lines (events 21-25) went to a logger that was not fail-safe: on a deleted
    /// authorized-keys file the line came first, so its throw skipped the revocation (and escaped
    /// the file watcher's thread), and the deleted file's clients were still admitted.
    /// </summary>
    [Fact]
    public async Task ADeletedAuthorizedKeysFileAdmitsNobodyWhenTheLoggerThrows()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string folder = Directory.CreateTempSubdirectory("ossuary-broken-logger-").FullName;
        try
        {
            string file = Path.Combine(folder, "authorized_keys");
            await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(clientKey.PublicKey)]);
            var sink = new BreakableLoggerProvider();
            var logs = new FakeLoggerProvider(); // a working provider next to the broken one: it still sees every line
            await using KestrelHost host = await KestrelHost.StartAsync(
                k => k.Listen(IPAddress.Loopback, 0, listen => listen
                    .UseOssuary(o =>
                    {
                        o.Identity = serverKey;
                        o.AuthorizedKeysFile = file;
                    })
                    .UseConnectionHandler<EchoConnectionHandler>()),
                builder => builder.Logging.AddProvider(logs).AddProvider(sink).AddFilter("Ossuary", LogLevel.Debug));
            var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
            await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync();

            sink.Broken = true;
            File.Delete(file);
            await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 23));

            await using OssuaryClientConnection revoked = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(clientKey, serverKey.PublicKey)).Within();
            await Echo.AssertRefusedAsync(revoked);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private sealed class BreakableLoggerProvider : ILoggerProvider
    {
        public volatile bool Broken;

        // Only Ossuary's categories break: a host's own lines (its shutdown's, say) are not under test.
        public ILogger CreateLogger(string categoryName) =>
            categoryName.StartsWith("Ossuary", StringComparison.Ordinal) ? new BreakableLogger(this) : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

        public void Dispose()
        {
        }

        private sealed class BreakableLogger(BreakableLoggerProvider provider) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (provider.Broken)
                {
                    throw new IOException("The log sink is gone.");
                }
            }
        }
    }
}
