using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>OssuaryStream, the SslStream-shaped API, over real loopback TCP.</summary>
public class OssuaryStreamTests
{
    [Fact]
    public Task StreamsAuthenticateOverLoopbackTcpAndTalkBothWays() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        (NetworkStream serverSide, NetworkStream clientSide) = await ConnectTcpPairAsync();
        await using var server = new OssuaryStream(serverSide);
        await using var client = new OssuaryStream(clientSide);
        var serverOptions = new OssuaryServerOptions { Identity = serverKey };
        serverOptions.AuthorizedClientKeys.Add(clientKey.PublicKey);
        var clientOptions = new OssuaryClientOptions { Identity = clientKey };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);

        await Task.WhenAll(server.AuthenticateAsServerAsync(serverOptions), client.AuthenticateAsClientAsync(clientOptions));

        Assert.True(client.IsAuthenticated && server.IsAuthenticated);
        Assert.Equal(clientKey.PublicKey, server.Connection!.RemotePublicKey);
        Assert.Equal(serverKey.PublicKey, client.Connection!.RemotePublicKey);

        byte[] request = new byte[40_000]; // more than two frames
        new Random(11).NextBytes(request);
        await client.WriteAsync(request);
        byte[] received = new byte[request.Length];
        await server.ReadExactlyAsync(received);
        Assert.Equal(request, received);

        await server.WriteAsync("reply"u8.ToArray());
        byte[] reply = new byte[5];
        await client.ReadExactlyAsync(reply);
        Assert.Equal("reply"u8.ToArray(), reply);

        // Disposing sends Disconnect: the other side reads a clean end of stream. The client's disposal
        // then waits for the server to close (up to 5 s), so the server closes once it has read the end.
        Task clientClosing = client.DisposeAsync().AsTask();
        Assert.Equal(0, await server.ReadAsync(new byte[16]).AsTask().Within());
        await server.DisposeAsync();
        await clientClosing.Within();
    });

    [Fact]
    public Task StreamClientTalksToKestrelThroughUseOssuary() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Server.EndPoint);
        await using var stream = new OssuaryStream(tcp.GetStream());

        await stream.AuthenticateAsClientAsync(server.ClientOptions);
        await stream.WriteAsync("through kestrel"u8.ToArray());
        byte[] echoed = new byte[15];
        await stream.ReadExactlyAsync(echoed);

        Assert.Equal("through kestrel"u8.ToArray(), echoed);
        Assert.Equal(server.ServerPublicKey, stream.Connection!.RemotePublicKey);
        Assert.Equal(server.ClientPublicKey, Assert.Single(server.Server.Log.Features)!.RemotePublicKey);
        await stream.DisposeAsync();
        Assert.Null(await server.Server.Log.NextOutcomeAsync());
    });

    [Fact]
    public Task StreamReadFailsAsTruncatedWhenTheTransportEndsWithoutDisconnect() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        (NetworkStream serverSide, NetworkStream clientSide) = await ConnectTcpPairAsync();
        await using var server = new OssuaryStream(serverSide);
        await using var client = new OssuaryStream(clientSide);
        var clientOptions = new OssuaryClientOptions();
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new OssuaryServerOptions { Identity = serverKey, Mode = OssuaryServerMode.Unauthenticated }),
            client.AuthenticateAsClientAsync(clientOptions));

        await server.WriteAsync("bye"u8.ToArray());
        byte[] bye = new byte[3];
        await client.ReadExactlyAsync(bye);
        Assert.Equal("bye"u8.ToArray(), bye);

        // A write returns once the bytes are queued for sealing, not once they are on the wire, so
        // the socket ends only after they arrived: now without Disconnect.
        serverSide.Socket.Shutdown(SocketShutdown.Both);
        OssuaryException truncated = await Assert.ThrowsAsync<OssuaryException>(() => client.ReadAsync(new byte[16]).AsTask().Within());
        Assert.Equal(OssuaryErrorReason.Truncated, truncated.Reason);
    });

    [Fact]
    public Task StreamThatFailedToAuthenticateStillDisposesItsInnerStream() => Run(async () =>
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await ConnectTcpPairAsync();
        using var peer = serverSide;
        var stream = new OssuaryStream(clientSide);
        serverSide.Socket.Shutdown(SocketShutdown.Both); // the "server" hangs up at once

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => stream.AuthenticateAsClientAsync(new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } }));
        Assert.Equal(OssuaryErrorReason.Truncated, failed.Reason);
        stream.Dispose();

        Assert.Throws<ObjectDisposedException>(() => clientSide.Write([1]));
    });

    [Fact]
    public Task AReadOrWriteAfterAFailedAuthenticationSaysItFailedNotToAuthenticate() => Run(async () =>
    {
        // It said "Authenticate the OssuaryStream before reading or writing.", which the stream then
        // refuses ("already been authenticated (or tried to be)").
        (NetworkStream serverSide, NetworkStream clientSide) = await ConnectTcpPairAsync();
        using var peer = serverSide;
        await using var stream = new OssuaryStream(clientSide);
        serverSide.Socket.Shutdown(SocketShutdown.Both); // the "server" hangs up at once
        await Assert.ThrowsAsync<OssuaryException>(() => stream.AuthenticateAsClientAsync(new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } }));

        InvalidOperationException read = Assert.Throws<InvalidOperationException>(() => stream.Read(new byte[1], 0, 1));
        InvalidOperationException write = await Assert.ThrowsAsync<InvalidOperationException>(() => stream.WriteAsync(new byte[1]).AsTask());

        Assert.Contains("authentication failed", read.Message, StringComparison.Ordinal);
        Assert.Equal(read.Message, write.Message);
        Assert.Contains("Authenticate the OssuaryStream before", Assert.Throws<InvalidOperationException>(() => new OssuaryStream(new MemoryStream()).Read(new byte[1], 0, 1)).Message, StringComparison.Ordinal);
    });

    [Fact]
    public void StreamNeverAuthenticatedDisposesItsInnerStreamUnlessAskedToLeaveItOpen()
    {
        var owned = new MemoryStream();
        new OssuaryStream(owned).Dispose();
        Assert.False(owned.CanRead);

        var left = new MemoryStream();
        new OssuaryStream(left, leaveInnerStreamOpen: true).Dispose();
        Assert.True(left.CanRead);
    }

    [Fact]
    public Task FlushAlsoWaitsForAWriteWhoseWaitForRoomWasCancelled() => Run(async () =>
    {
        // A write cancelled while it waits for room has already put a piece of its bytes in the pipe,
        // and they are sent: a flush that did not count them returned before they reached the inner
        // stream. The pieces it had not taken yet are not sent (a write holds no more than a piece).
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        byte[] message = new byte[1 << 20];
        new Random(4).NextBytes(message);
        pair.ClientGate.Shut();
        await pair.Client.WriteAsync(message.AsMemory(0, 1));
        await pair.ClientGate.Waiting.Within(); // the sender holds that byte at the gate

        using var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pair.Client.WriteAsync(message.AsMemory(1), giveUp.Token).AsTask().Within());
        Task flush = pair.Client.FlushAsync();
        pair.ClientGate.OpenOnce(); // the first byte goes; the rest waits at the gate
        await pair.ClientGate.Waiting.Within();
        await SettledAsync(pair.Client, flush);
        Assert.False(flush.IsCompleted, "the flush returned while the cancelled write's bytes were still held back");

        pair.ClientGate.Open();
        await flush.Within();
        await pair.Client.DisposeAsync();
        var received = new MemoryStream();
        await pair.Server.CopyToAsync(received).Within();
        Assert.InRange(received.Length, 2, message.Length - 1);
        Assert.Equal(message[..(int)received.Length], received.ToArray());
    });

    [Fact]
    public Task FlushAlsoWaitsForAWriteCancelledWhileItsBytesWereCopied() => Run(async () =>
    {
        // A token cancelled while WriteAsync copies a large buffer into the pipe: the pipe's flush,
        // asked with that token, refused at once without committing the copied bytes, which stayed
        // counted as written. The next FlushAsync waited for bytes nothing would ever send.
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        Task drain = pair.Server.CopyToAsync(Stream.Null);
        byte[] message = new byte[32 << 20];
        int cancelled = 0;
        for (int attempt = 0; attempt < 4; attempt++)
        {
            // From another thread, a few milliseconds in: while the write still copies its 32 MiB.
            using var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(1 << attempt));
            Task write = pair.Client.WriteAsync(message, giveUp.Token).AsTask();
            try
            {
                await write.Within();
            }
            catch (OperationCanceledException)
            {
                cancelled++;
            }

            await pair.Client.FlushAsync().Within(TimeSpan.FromSeconds(20));
        }

        Assert.True(cancelled > 0, "no write was cancelled: the test proved nothing");
        await pair.Client.DisposeAsync();
        await drain.Within();
    });

    [Fact]
    public Task FlushWaitsUntilTheInnerStreamHasTakenEveryByteWritten() => Run(async () =>
    {
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        byte[] message = new byte[40_000];
        new Random(3).NextBytes(message);
        pair.ClientGate.Shut();

        await pair.Client.WriteAsync(message); // queued: the write does not wait for the inner stream
        Task flush = pair.Client.FlushAsync();
        await pair.ClientGate.Waiting.Within(); // sealed, and held at the gate
        await SettledAsync(pair.Client, flush);
        Assert.False(flush.IsCompleted, "the flush returned while the inner stream still held back the bytes");

        pair.ClientGate.Open();
        await flush.Within();
        byte[] received = new byte[message.Length];
        await pair.Server.ReadExactlyAsync(received).AsTask().Within();
        Assert.Equal(message, received);
    });

    [Fact]
    public Task CancellingAFlushLeavesTheBytesGoingAndALaterFlushWaitsForThem() => Run(async () =>
    {
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        pair.ClientGate.Shut();
        await pair.Client.WriteAsync("late but whole"u8.ToArray());

        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pair.Client.FlushAsync(cancel.Token));

        pair.ClientGate.Open();
        await pair.Client.FlushAsync().Within();
        byte[] received = new byte[14];
        await pair.Server.ReadExactlyAsync(received).AsTask().Within();
        Assert.Equal("late but whole"u8.ToArray(), received);
    });

    [Fact]
    public Task FlushReportsAnInnerStreamThatFailedBeforeTakingTheBytes() => Run(async () =>
    {
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        pair.ClientGate.Shut();
        await pair.Client.WriteAsync("never arrives"u8.ToArray());
        Task flush = pair.Client.FlushAsync();

        pair.ClientGate.Break();

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => flush.Within());
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
    });

    /// <summary>
    /// A write after the inner stream failed under an earlier one reports the failure and its cause,
    /// as the flush does: it said ConnectionClosed, the reason of a clean Disconnect, with no cause,
    /// so the application could not tell its bytes were lost to a broken stream rather than a goodbye.
    /// </summary>
    [Fact]
    public Task AWriteAfterTheInnerStreamFailedReportsTheFailureAndItsCause() => Run(async () =>
    {
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        pair.ClientGate.Break();
        await pair.Client.WriteAsync("never arrives"u8.ToArray());
        await Assert.ThrowsAsync<OssuaryException>(() => pair.Client.FlushAsync().Within()); // the output has failed now

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => pair.Client.WriteAsync("nor this"u8.ToArray()).AsTask().Within());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        Assert.Contains("the gated stream broke", failed.ToString(), StringComparison.Ordinal);
    });

    [Fact]
    public Task FlushWithNothingOutstandingCompletesAtOnceBeforeAndAfterAuthentication() => Run(async () =>
    {
        var unauthenticated = new OssuaryStream(new MemoryStream());
        Assert.True(unauthenticated.FlushAsync().IsCompletedSuccessfully);
        unauthenticated.Flush();

        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        Assert.True(pair.Client.FlushAsync().IsCompletedSuccessfully);
        await pair.Client.WriteAsync("x"u8.ToArray());
        pair.Client.Flush();
        Assert.True(pair.Client.FlushAsync().IsCompletedSuccessfully);
    });

    /// <summary>
    /// A stream whose authentication failed refuses a flush as it refuses a write: the flush reported success,
    /// so code that flushes to learn its bytes went out (through a buffering layer that swallowed the write's
    /// failure, or on another thread) was told they had, over a connection that never was.
    /// </summary>
    [Fact]
    public Task AFlushAfterAFailedAuthenticationIsRefusedAsAWriteIs() => Run(async () =>
    {
        await using var stream = new OssuaryStream(new MemoryStream()); // ends at once: the handshake fails
        await Assert.ThrowsAsync<OssuaryException>(() => stream.AuthenticateAsClientAsync(new OssuaryClientOptions { TrustedServerKeys = { OssuaryIdentity.Generate().PublicKey } }));

        InvalidOperationException write = await Assert.ThrowsAsync<InvalidOperationException>(() => stream.WriteAsync(new byte[1]).AsTask());
        InvalidOperationException flush = await Assert.ThrowsAsync<InvalidOperationException>(() => stream.FlushAsync());
        Assert.Throws<InvalidOperationException>(stream.Flush);
        Assert.Equal(write.Message, flush.Message);
    });

    [Fact]
    public Task FlushWithACancelledTokenIsCancelledEvenWithNothingOutstanding() => Run(async () =>
    {
        // As every Stream's FlushAsync (Stream's own, NetworkStream's): a cancelled token cancels the
        // call, whether or not there was anything to wait for. It returned success when there was not.
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();

        OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pair.Client.FlushAsync(cancel.Token));
        Assert.Equal(cancel.Token, cancelled.CancellationToken);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new OssuaryStream(new MemoryStream()).FlushAsync(cancel.Token));
    });

    [Fact]
    public Task DisposingAStreamThatOwnsItsSocketThrowsNothingInside() => Run(async () =>
    {
        // Cancelling the pipe reader's pending receive throws and catches an exception inside it, once
        // a connection; a stream that owns its socket stops the receive instead. Only exceptions of
        // this test's own flow count (the marker flows into every continuation it starts).
        ExceptionsOfThisFlow.Value = true;
        var thrown = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        EventHandler<System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs> watch = (_, e) =>
        {
            if (ExceptionsOfThisFlow.Value)
            {
                thrown.Enqueue(e.Exception);
            }
        };

        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        (NetworkStream serverSide, NetworkStream clientSide) = await ConnectTcpPairAsync();
        await using var server = new OssuaryStream(serverSide);
        var client = new OssuaryStream(clientSide);
        var serverOptions = new OssuaryServerOptions { Identity = serverKey };
        serverOptions.AuthorizedClientKeys.Add(clientKey.PublicKey);
        var clientOptions = new OssuaryClientOptions { Identity = clientKey };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        await Task.WhenAll(server.AuthenticateAsServerAsync(serverOptions), client.AuthenticateAsClientAsync(clientOptions));
        await client.WriteAsync("ping"u8.ToArray());
        await server.ReadExactlyAsync(new byte[4]);

        AppDomain.CurrentDomain.FirstChanceException += watch;
        try
        {
            await client.DisposeAsync(); // Disconnect; the server's answer may never come, so the client stops receiving
            Assert.Equal(0, await server.ReadAsync(new byte[16]).AsTask().Within());
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= watch;
        }

        Assert.Empty(thrown);
    });

    private static readonly AsyncLocal<bool> ExceptionsOfThisFlow = new();

    internal static async Task<(NetworkStream Server, NetworkStream Client)> ConnectTcpPairAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Task<Socket> accepted = listener.AcceptSocketAsync();
        await client.ConnectAsync(listener.LocalEndpoint).Within();
        Socket server = await accepted.Within();
        server.NoDelay = true;
        return (new NetworkStream(server, ownsSocket: true), new NetworkStream(client, ownsSocket: true));
    }

    private static Task Run(Func<Task> test) => test().Within();

    /// <summary>
    /// Waits until <paramref name="flush"/> has returned or waits for the connection's output to report
    /// more bytes sent (it has published its signal, which the output takes down each time it reports).
    /// Called once the output is held at the gate, after its last report: a flush that counted fewer
    /// bytes than it should have been woken by that report and returns, one that counted them all waits
    /// again. Without this, the check that follows could run before a wrong flush had got to return.
    /// </summary>
    private static async Task SettledAsync(OssuaryStream stream, Task flush)
    {
        const BindingFlags Private = BindingFlags.Instance | BindingFlags.NonPublic;
        object connection = typeof(OssuaryStream).GetField("_secure", Private)!.GetValue(stream)!;
        FieldInfo signal = typeof(OssuaryDuplexPipe).GetField("_sentSignal", Private)!;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!flush.IsCompleted && signal.GetValue(connection) is null)
        {
            Assert.True(waited.Elapsed < TestTimeout.Default, "the flush neither returned nor waited");
            await Task.Delay(10);
        }
    }

    /// <summary>Two authenticated OssuaryStreams over loopback TCP; the client's inner stream is gated.</summary>
    internal sealed class AuthenticatedStreams : IAsyncDisposable
    {
        private readonly OssuaryIdentity _serverKey = OssuaryIdentity.Generate();
        private readonly OssuaryIdentity _clientKey = OssuaryIdentity.Generate();

        private AuthenticatedStreams(NetworkStream serverSide, NetworkStream clientSide)
        {
            ClientGate = new GatedStream(clientSide);
            Server = new OssuaryStream(serverSide);
            Client = new OssuaryStream(ClientGate);
        }

        public OssuaryStream Server { get; }

        public OssuaryStream Client { get; }

        public GatedStream ClientGate { get; }

        public static async Task<AuthenticatedStreams> StartAsync()
        {
            (NetworkStream serverSide, NetworkStream clientSide) = await ConnectTcpPairAsync();
            var pair = new AuthenticatedStreams(serverSide, clientSide);
            var serverOptions = new OssuaryServerOptions { Identity = pair._serverKey };
            serverOptions.AuthorizedClientKeys.Add(pair._clientKey.PublicKey);
            var clientOptions = new OssuaryClientOptions { Identity = pair._clientKey };
            clientOptions.TrustedServerKeys.Add(pair._serverKey.PublicKey);
            await Task.WhenAll(pair.Server.AuthenticateAsServerAsync(serverOptions), pair.Client.AuthenticateAsClientAsync(clientOptions)).Within();
            return pair;
        }

        public async ValueTask DisposeAsync()
        {
            ClientGate.Open();
            await Client.DisposeAsync();
            await Server.DisposeAsync();
            _serverKey.Dispose();
            _clientKey.Dispose();
        }
    }
}
