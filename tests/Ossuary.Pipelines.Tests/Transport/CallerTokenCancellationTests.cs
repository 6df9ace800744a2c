using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A connect or handshake given up because the caller's token was cancelled throws an
/// OperationCanceledException that carries that token, as .NET's own APIs do: callers tell their
/// cancellation from any other with <c>ex.CancellationToken == token</c>. It carried a token
/// linked to it inside the library, which no caller can recognise.
/// </summary>
public class CallerTokenCancellationTests
{
    // Far beyond the test's own waits: only the token can end the handshake.
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task ConnectWithACancelledTokenThrowsWithThatToken()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => OssuaryClient.ConnectAsync(listener.LocalEndpoint, new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } }, cancel.Token).Within());

        Assert.Equal(cancel.Token, cancelled.CancellationToken);
    }

    [Fact]
    public async Task ConnectCancelledDuringTheHandshakeThrowsWithThatToken()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task<Socket> accepted = listener.AcceptSocketAsync();
        var options = new OssuaryClientOptions { HandshakeStepTimeout = Long, HandshakeTimeout = Long, TrustedServerKeys = { StrangerKey.Value } };
        using var cancel = new CancellationTokenSource();

        Task<OssuaryClientConnection> connect = OssuaryClient.ConnectAsync(listener.LocalEndpoint, options, cancel.Token);
        using Socket silent = await accepted.Within();
        await ReceiveClientHelloAsync(silent);
        cancel.Cancel();

        OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connect.Within());
        Assert.Equal(cancel.Token, cancelled.CancellationToken);
    }

    [Fact]
    public async Task StreamAuthenticationCancelledDuringTheHandshakeThrowsWithThatToken()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using Socket silent = serverSide.Socket;
        await using var stream = new OssuaryStream(clientSide);
        var options = new OssuaryClientOptions { HandshakeStepTimeout = Long, HandshakeTimeout = Long, TrustedServerKeys = { StrangerKey.Value } };
        using var cancel = new CancellationTokenSource();

        Task authenticate = stream.AuthenticateAsClientAsync(options, cancel.Token);
        await ReceiveClientHelloAsync(silent);
        cancel.Cancel();

        OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => authenticate.Within());
        Assert.Equal(cancel.Token, cancelled.CancellationToken);
    }

    /// <summary>
    /// A server authentication asked for with a token already cancelled runs none of the application's code:
    /// the IdentitySelector ran first (a vault asked for a key, a handshake counted as started) and only the
    /// handshake after it looked at the token, so a caller that had given up still paid for the selection.
    /// </summary>
    [Fact]
    public async Task StreamServerAuthenticationWithACancelledTokenThrowsWithThatTokenWithoutRunningTheSelector()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var silentClient = clientSide;
        using var serverKey = OssuaryIdentity.Generate();
        var selector = new CountingSelector(serverKey);
        OssuaryServerOptions options = selector.Options();
        await using var stream = new OssuaryStream(serverSide);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.AuthenticateAsServerAsync(options, cancel.Token).Within());

        Assert.Equal(cancel.Token, cancelled.CancellationToken);
        Assert.Equal(0, selector.Selections);
    }

    /// <summary>
    /// AcceptAsync over a bare pipe, with a token already cancelled, runs none of the application's code: it
    /// ran the IdentitySelector first (a vault asked for a key, a failure logged at Error as ours and the client
    /// told with Disconnect (error)), and only the handshake after it looked at the token.
    /// </summary>
    [Fact]
    public async Task AcceptWithACancelledTokenThrowsWithThatTokenWithoutRunningTheSelector()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var silentClient = clientSide;
        await using var transportStream = serverSide;
        using var serverKey = OssuaryIdentity.Generate();
        var selector = new CountingSelector(serverKey);
        OssuaryServerOptions options = selector.Options();
        var transport = new BarePipe(PipeReader.Create(serverSide), PipeWriter.Create(serverSide));
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => OssuaryDuplexPipe.AcceptAsync(transport, options, cancel.Token).Within());

        Assert.Equal(cancel.Token, cancelled.CancellationToken);
        Assert.Equal(0, selector.Selections);
    }

    /// <summary>
    /// ConnectAsync over a bare pipe, with a token already cancelled, leaves the transport as it found it: it
    /// wrote its ClientHello into the transport's output before the flush looked at the token, so the caller's
    /// own completion of that output (its clean-up) sent a handshake for a connection it had given up on.
    /// </summary>
    [Fact]
    public async Task ConnectOverABarePipeWithACancelledTokenWritesNothingToTheTransport()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using Socket server = serverSide.Socket;
        await using var transportStream = clientSide;
        var transport = new BarePipe(PipeReader.Create(clientSide), PipeWriter.Create(clientSide));
        var options = new OssuaryClientOptions
        {
            LoggerFactory = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
            TrustedServerKeys = { StrangerKey.Value },
        };
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => OssuaryDuplexPipe.ConnectAsync(transport, options, cancel.Token).Within());

        // The caller cleans up as after any failed connect: its output completed, which sends what it holds.
        await transport.Output.CompleteAsync(); // which also closes the socket (the writer owns its stream)
        byte[] received = new byte[256];
        int total = 0;
        int read;
        while ((read = await server.ReceiveAsync(received.AsMemory(total)).Within()) > 0)
        {
            total += read;
        }

        Assert.Equal((cancel.Token, 0), (cancelled.CancellationToken, total));
    }

    /// <summary>
    /// A client authentication asked for with a token already cancelled leaves the stream as it was: it claimed
    /// the inner stream first, so the stream was spent and a later authentication refused as a second one.
    /// </summary>
    [Fact]
    public async Task StreamClientAuthenticationWithACancelledTokenLeavesTheStreamUnspent()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var silentServer = serverSide;
        await using var stream = new OssuaryStream(clientSide);
        var options = new OssuaryClientOptions
        {
            LoggerFactory = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
            TrustedServerKeys = { StrangerKey.Value },
        };
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.AuthenticateAsClientAsync(options, cancel.Token).Within());

        // Asked again, still cancelled: the stream is unspent, so this too is a cancellation, not "already authenticated".
        OperationCanceledException again = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.AuthenticateAsClientAsync(options, cancel.Token).Within());

        Assert.Equal(cancel.Token, again.CancellationToken);
    }

    private sealed record BarePipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    /// <summary>An unauthenticated server's options whose IdentitySelector counts its calls and returns <paramref name="key"/>.</summary>
    private sealed class CountingSelector(OssuaryIdentity key)
    {
        private int _selections;

        public int Selections => Volatile.Read(ref _selections);

        public OssuaryServerOptions Options() => new()
        {
            Mode = OssuaryServerMode.Unauthenticated,
            LoggerFactory = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
            IdentitySelector = _ =>
            {
                Interlocked.Increment(ref _selections);
                return key;
            },
        };
    }

    private static async Task ReceiveClientHelloAsync(Socket server)
    {
        byte[] hello = new byte[92];
        int received = 0;
        while (received < hello.Length)
        {
            received += await server.ReceiveAsync(hello.AsMemory(received)).Within();
        }
    }
}
