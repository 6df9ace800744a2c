using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

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

    private sealed class BreakableLoggerProvider : ILoggerProvider
    {
        public volatile bool Broken;

        public ILogger CreateLogger(string categoryName) => new BreakableLogger(this);

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
