using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A client whose application writes but never reads, over a socket the server resets: the output's
/// write to the socket throws, and the output leaves it to the input to say so (the input fails with the
/// same reset when it reads the socket). But this input is full, so its loop waits for room and reads
/// the socket no more, and disposal stops that loop without a failure: the bytes the application wrote
/// last (accepted by their flush) were lost, and nothing said so, not even at Debug.
/// </summary>
public class FailedOutputBehindAFullInputTests
{
    private const int ConnectionFailed = 5;

    [Fact]
    public async Task AnOutputThatFailsBehindAFullInputIsLoggedWhenTheConnectionIsDisposed()
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        OssuaryClientOptions options = keys.ClientOptions();
        options.LoggerFactory = loggers;
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys, options);
        using SessionSocketPeer serverPeer = server;
        await using (client)
        {
            // Four full frames fill the client's input: its inbound loop waits for room, not on the socket.
            byte[] frame = new byte[OssuarySession.MaxPlaintextLength];
            await server.SendTogetherAsync([.. Enumerable.Range(0, 5).Select(_ => server.DataPacket(frame))]);
            await PipeReads.WaitUntilHoldsAsync(client.Transport.Input, 4 * OssuarySession.MaxPlaintextLength);
            server.Socket.LingerState = new LingerOption(enable: true, seconds: 0);
            server.Socket.Close(); // a reset, not a FIN

            // Accepted, then lost when the socket's write fails: a write after that finds the output completed.
            while (!(await client.Transport.Output.WriteAsync(new byte[1000]).Within()).IsCompleted)
            {
            }
        }

        FakeLogRecord failed = Assert.Single(LogRecords.Records(logs, ConnectionFailed));
        Assert.Equal(LogLevel.Debug, failed.Level);
        OssuaryException said = Assert.IsType<OssuaryException>(failed.Exception);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, said.Reason);
        Assert.IsAssignableFrom<IOException>(said.InnerException);
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Level >= LogLevel.Warning);
    }
}
