using System.IO.Pipelines;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// A connected socket as an <see cref="IDuplexPipe"/> through NetworkStream, with the options of
/// the library's pipes client (StreamDuplexPipe): the transport of the raw adapter target.
/// </summary>
internal sealed class SocketStreamPipe : IDuplexPipe, IAsyncDisposable
{
    private readonly NetworkStream _stream;

    public SocketStreamPipe(Socket socket)
    {
        _stream = new NetworkStream(socket, ownsSocket: true);
        Input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true, useZeroByteReads: true));
        Output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 128 * 1024, leaveOpen: true));
    }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}
