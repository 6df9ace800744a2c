using System.IO.Pipelines;

namespace Ossuary.Pipelines.Integrations;

/// <summary>Pipes over a <see cref="Stream"/> (a socket's <see cref="System.Net.Sockets.NetworkStream"/>, an <see cref="OssuaryStream"/>'s inner stream).</summary>
internal sealed class StreamDuplexPipe(Stream stream, bool leaveOpen) : IDuplexPipe
{
    // Zero-byte reads: an idle connection waits for data before it rents its 64 KiB read buffer,
    // instead of holding one for as long as the peer is quiet.
    public PipeReader Input { get; } = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true, useZeroByteReads: true));

    public PipeWriter Output { get; } = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 32 * 1024, leaveOpen: true));

    public async ValueTask DisposeStreamAsync()
    {
        if (!leaveOpen)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
