using System.IO.Pipelines;

namespace Ossuary.Pipelines.Integrations;

/// <summary>Pipes over a <see cref="Stream"/> (a socket's <see cref="System.Net.Sockets.NetworkStream"/>, an <see cref="OssuaryStream"/>'s inner stream).</summary>
internal sealed class StreamDuplexPipe(Stream stream, bool leaveOpen) : IDuplexPipe
{
    // Zero-byte reads: an idle connection waits for data before it rents its 64 KiB read buffer,
    // instead of holding one for as long as the peer is quiet.
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true, useZeroByteReads: true);

    // A 128 KiB segment holds a whole batch of sealed frames (an application that flushes faster
    // than the socket drains has up to 64 KiB queued), which then leaves in one socket write; a
    // 32 KiB segment held one full frame, so each frame was its own write.
    private static readonly StreamPipeWriterOptions WriterOptions = new(minimumBufferSize: 128 * 1024, leaveOpen: true);

    public PipeReader Input { get; } = PipeReader.Create(stream, ReaderOptions);

    public PipeWriter Output { get; } = PipeWriter.Create(stream, WriterOptions);

    public async ValueTask DisposeStreamAsync()
    {
        if (!leaveOpen)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
