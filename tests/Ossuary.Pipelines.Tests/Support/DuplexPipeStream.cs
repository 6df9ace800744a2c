using System.Buffers;
using System.IO.Pipelines;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A <see cref="Stream"/> over an in-memory <see cref="IDuplexPipe"/> that behaves as a socket's
/// <c>NetworkStream</c> does where it matters here: disposing it ends both directions, and it throws
/// <see cref="ObjectDisposedException"/> once disposed.
/// </summary>
internal sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
{
    private volatile bool _disposed;

    /// <summary>
    /// The transport a user holding such a stream would write: <see cref="PipeReader.Create(Stream, StreamPipeReaderOptions?)"/>
    /// and <see cref="PipeWriter.Create(Stream, StreamPipeWriterOptions?)"/> with their defaults, which dispose the stream
    /// when either end is completed.
    /// </summary>
    public static IDuplexPipe OwningTransport(IDuplexPipe pipe)
    {
        var stream = new DuplexPipeStream(pipe);
        return new DuplexPipe(PipeReader.Create(stream), PipeWriter.Create(stream));
    }

    public override bool CanRead => !_disposed;

    public override bool CanWrite => !_disposed;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ReadResult read = await pipe.Input.ReadAsync(cancellationToken);
        ReadOnlySequence<byte> data = read.Buffer.Slice(0, Math.Min(buffer.Length, read.Buffer.Length));
        data.CopyTo(buffer.Span);
        pipe.Input.AdvanceTo(data.End);
        return (int)data.Length;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await pipe.Output.WriteAsync(buffer, cancellationToken);
    }

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Task.CompletedTask;
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            pipe.Input.Complete();
            pipe.Output.Complete();
        }

        base.Dispose(disposing);
    }
}
