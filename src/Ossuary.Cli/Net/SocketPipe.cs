using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace Ossuary.Cli.Net;

/// <summary>A connected socket as an <see cref="IDuplexPipe"/>, the transport the Ossuary adapter secures.</summary>
internal sealed class SocketPipe : IDuplexPipe, IAsyncDisposable
{
    private readonly NetworkStream _stream;

    public SocketPipe(Socket socket)
    {
        socket.NoDelay = true;
        RemoteEndPoint = socket.RemoteEndPoint;
        _stream = new NetworkStream(socket, ownsSocket: true);
        Input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        Output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 32 * 1024, leaveOpen: true));
    }

    public EndPoint? RemoteEndPoint { get; }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    /// <summary>Connects to an address, or to each address of a host name in turn (a dual-mode socket tries them all).</summary>
    public static async Task<SocketPipe> ConnectAsync(HostPort target, CancellationToken cancellationToken)
    {
        bool literal = IPAddress.TryParse(target.Host, out IPAddress? address);
        var socket = literal
            ? new Socket(address!.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
            : new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (literal)
            {
                await socket.ConnectAsync(new IPEndPoint(address!, target.Port), cancellationToken);
            }
            else
            {
                await socket.ConnectAsync(target.Host, target.Port, cancellationToken);
            }

            return new SocketPipe(socket);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new CliException($"cannot connect to {target}: {ex.Message}", ExitCodes.Network);
        }
    }

    public static Socket Listen(string bind, int port)
    {
        if (!IPAddress.TryParse(bind, out IPAddress? address))
        {
            throw new CliException($"--bind '{bind}' is not an IP address", ExitCodes.BadInput);
        }

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
}
