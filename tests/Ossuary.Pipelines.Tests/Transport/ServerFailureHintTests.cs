using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A client with a key whose server ends the connection with Disconnect (error) before sending any data: the
/// wire carries no reason, so a refusal of the key and a server application that failed look the same. The
/// client's message says so, and what it knows: whether it had sent data first (the server's application may
/// have failed on it). Real Kestrel under UseOssuary and a real client.
/// </summary>
public sealed class ServerFailureHintTests
{
    [Fact]
    public Task ARefusedKeyIsToldToCheckItsKeyRightAfterConnecting() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var stranger = OssuaryIdentity.Generate();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        OssuaryClientOptions options = keys.ClientOptions();
        options.Identity = stranger;
        await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, options);

        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(client.Transport.Input));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
        Assert.Contains("If this happens right after connecting, check that the server authorizes this client's key", refused.Message, StringComparison.Ordinal);
    });

    [Fact]
    public Task AServerApplicationThatFailsAtOnceIsNamedAlongsideTheKey() => Run(async () =>
    {
        // The same wire as the refusal above: the message may not say it is one.
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartAsync<ThrowingAtOnceHandler>(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions());

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(client.Transport.Input));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        Assert.Contains("so does a server whose application fails before it writes", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("This is how a server refuses", failed.Message, StringComparison.Ordinal);
    });

    [Fact]
    public Task AServerApplicationThatFailsOnWhatTheClientSentIsNotBlamedOnTheKey() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartAsync<ThrowingOnTheRequestHandler>(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions());
        Assert.False((await client.Transport.Output.WriteAsync("a request the server fails on"u8.ToArray())).IsCompleted);

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(client.Transport.Input));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        Assert.Contains("the server's application may have failed on what it read", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("check that the server authorizes", failed.Message, StringComparison.Ordinal);
    });

    private static Task Run(Func<Task> test) => test().Within();

    /// <summary>Throws as soon as it is called: the server sends Disconnect (error) right after the handshake.</summary>
    public sealed class ThrowingAtOnceHandler : ConnectionHandler
    {
        public override Task OnConnectedAsync(ConnectionContext connection) =>
            throw new InvalidOperationException("the server application failed at once");
    }

    /// <summary>Reads the client's request and throws on it, writing nothing.</summary>
    public sealed class ThrowingOnTheRequestHandler : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            System.IO.Pipelines.ReadResult read = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
            throw new InvalidOperationException("the server application failed on the request");
        }
    }
}
