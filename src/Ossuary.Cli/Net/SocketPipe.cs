using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Ossuary.Pipelines.Integrations;

namespace Ossuary.Cli.Net;

/// <summary>A connected socket as an <see cref="IDuplexPipe"/>, the transport the Ossuary adapter secures.</summary>
internal sealed class SocketPipe : IDuplexPipe, IAsyncDisposable
{
    private readonly FirstBytesStream _stream;
    private readonly Socket _socket;

    public SocketPipe(Socket socket)
    {
        _socket = socket;
        socket.NoDelay = true;
        EnableKeepAlive(socket);
        RemoteEndPoint = socket.RemoteEndPoint;
        _stream = new FirstBytesStream(new NetworkStream(socket, ownsSocket: true), Arrived);
        Input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        Output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 32 * 1024, leaveOpen: true));
    }

    public EndPoint? RemoteEndPoint { get; }

    /// <summary>The plaintext of the data packets read from the socket so far (see <see cref="ArrivedPlaintext"/>).</summary>
    public ArrivedPlaintext Arrived { get; } = new();

    /// <summary>True if the system holds bytes of the peer's that nothing has read from the socket yet.</summary>
    public bool HoldsUnreadBytes
    {
        get
        {
            try
            {
                return _socket.Available > 0;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return false; // reset or closed: nothing more will be read from it
            }
        }
    }

    /// <summary>
    /// After our Disconnect, once the session no longer reads the socket: reads it until the peer's last word
    /// (a Disconnect or Reset beyond the <paramref name="goodbyesBefore"/> that came before the session began) or
    /// its close, at most <paramref name="limit"/>, so that <see cref="Arrived"/> counts what the peer sent before
    /// it saw our Disconnect (which the closed session discarded). Not the close alone: a peer whose Disconnect
    /// crossed ours waits for our close as we wait for its, and both waited out the limit. Null once either is
    /// seen; else why neither was (a <see cref="TimeoutException"/> when the time is up, the failure when the
    /// connection failed): bytes the peer sent after that were never counted. A stop (Ctrl+C) throws: no end the peer chose.
    /// </summary>
    public async Task<Exception?> DrainAfterGoodbyeAsync(long goodbyesBefore, TimeSpan limit, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        byte[] buffer = new byte[16 * 1024];
        try
        {
            while (Arrived.Goodbyes <= goodbyesBefore && await _stream.ReadAsync(buffer, deadline.Token) > 0)
            {
            }

            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new TimeoutException();
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            return ex;
        }
    }

    /// <summary>
    /// True if bytes handed to the socket were not all delivered to it because a write was cancelled.
    /// Disposing a session whose peer stopped reading gives up after a few seconds and drops
    /// the rest, which the library logs (nowhere, in the tool) rather than throws.
    /// </summary>
    public bool OutputDropped => _stream.WriteAbandoned;

    /// <summary>
    /// A peer that vanishes without closing (power lost, a NAT that forgot the connection) must not
    /// hold a transfer or a session forever: TCP keep-alive as the library's default
    /// (<c>OssuaryServerOptions.TcpKeepAlive</c>), a probe after 60 s of silence and every 15 s after,
    /// the connection failed after four unanswered. A peer that is only idle answers from its kernel.
    /// </summary>
    private static void EnableKeepAlive(Socket socket)
    {
        if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 60);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 15);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 4);
        }
    }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    /// <summary>
    /// What the peer sent first, quoted for a message: printable ASCII kept, the rest escaped,
    /// cut at the first line break (an HTTP status line, an SSH banner); null if it sent nothing.
    /// </summary>
    public string? DescribeFirstBytes()
    {
        ReadOnlySpan<byte> first = _stream.First;
        if (first.IsEmpty)
        {
            return null;
        }

        var text = new StringBuilder();
        foreach (byte b in first)
        {
            if (b is (byte)'\r' or (byte)'\n' && text.Length > 0)
            {
                break;
            }

            text.Append(b is >= 0x20 and < 0x7f ? (char)b : $"\\x{b:x2}");
        }

        return text.ToString();
    }

    /// <summary>
    /// Ends a connection whose handshake failed after this side's last word (a refusal's Disconnect (error)):
    /// sends our end behind it, then reads and discards until the client closes its end, at most
    /// <paramref name="limit"/>, before the socket is closed. A refused client counts itself established
    /// and may be sending: a socket closed with its bytes unread, or receiving them once closed, sends a
    /// reset, which can drop the Disconnect before the client reads it (it saw "connection reset", not that
    /// it was refused). A client told closes at once, so this costs it a round trip.
    /// </summary>
    public async Task LingerAfterFailedHandshakeAsync(TimeSpan limit, CancellationToken cancellationToken)
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return; // already reset or closed: nothing left to wait for
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        try
        {
            while (true)
            {
                ReadResult read = await Input.ReadAsync(deadline.Token);
                Input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted || read.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The time is up, the command is stopping, the client reset, or the handshake left the reader
            // completed: the socket closes now all the same.
        }
    }

    /// <summary>
    /// Connects through the library's connector: an address, or each address of a host name in
    /// turn, IPv6 and IPv4. The handshake is the caller's, over <see cref="FirstBytesStream"/>, so a
    /// peer that is not Ossuary can be named by what it sent.
    /// </summary>
    public static async Task<SocketPipe> ConnectAsync(HostPort target, CancellationToken cancellationToken)
    {
        EndPoint endpoint = IPAddress.TryParse(target.Host, out IPAddress? address)
            ? new IPEndPoint(address, target.Port)
            : new DnsEndPoint(target.Host, target.Port);
        try
        {
            // The caller's --timeout covers the connect and the handshake together.
            return new SocketPipe(await OssuaryClient.ConnectSocketAsync(endpoint, Timeout.InfiniteTimeSpan, cancellationToken));
        }
        catch (SocketException ex)
        {
            throw new CliException($"cannot connect to {target}: {ex.Message}", ExitCodes.Network);
        }
    }

    /// <summary>Listens on an address or a host name (<c>localhost</c>): the name's first IPv4 address, else its first.</summary>
    public static Socket Listen(string bind, int port)
    {
        IPAddress address = ResolveBind(bind);
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(512);
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new CliException(ex.SocketErrorCode == SocketError.AddressAlreadyInUse
                ? $"port {port} on {bind} is already in use"
                : $"cannot listen on {bind}:{port}: {ex.Message}", ExitCodes.Network);
        }
    }

    public async ValueTask DisposeAsync() => await _stream.DisposeAsync();

    private static IPAddress ResolveBind(string bind)
    {
        if (IPAddress.TryParse(bind.Trim('[', ']'), out IPAddress? address))
        {
            return address;
        }

        IPAddress[] addresses;
        try
        {
            addresses = Dns.GetHostAddresses(bind);
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException)
        {
            throw new CliException($"--bind '{bind}' is neither an IP address nor a name of this machine", ExitCodes.BadInput);
        }

        return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
            ?? throw new CliException($"--bind '{bind}' has no address", ExitCodes.BadInput);
    }
}
