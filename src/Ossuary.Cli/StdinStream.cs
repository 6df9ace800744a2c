using System.Runtime.InteropServices;

namespace Ossuary.Cli;

/// <summary>
/// Standard input, when redirected, read with read(2). The console stream fails a read of a
/// descriptor that a parent made non-blocking (python's asyncio, node.js) as soon as the pipe is
/// empty, EAGAIN reported as "The process cannot access the file because it is being used by
/// another process": <c>producer | ossuary send -</c> ended at the producer's first pause. This
/// waits for data instead. A failed read is an <see cref="IOException"/> whose HResult is the errno.
/// </summary>
internal sealed class StdinStream : Stream
{
    private const int Descriptor = 0;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (true)
        {
            nint read = NativeStdio.Read(Descriptor, buffer, buffer.Length);
            if (read >= 0)
            {
                return (int)read;
            }

            int error = Marshal.GetLastPInvokeError();
            if (error == NativeStdio.WouldBlock)
            {
                NativeStdio.WaitUntilReady(Descriptor, NativeStdio.PollIn);
            }
            else if (error != NativeStdio.Interrupted)
            {
                throw NativeStdio.Failure(error);
            }
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <remarks>On the thread pool, as the console stream reads; like it, a read under way is not cancelled.</remarks>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled<int>(cancellationToken)
            : new ValueTask<int>(Task.Run(() => Read(buffer.Span), cancellationToken));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
