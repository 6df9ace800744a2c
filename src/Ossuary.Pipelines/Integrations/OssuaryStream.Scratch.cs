using System.Buffers;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The members Stream implements over an array from <see cref="ArrayPool{T}.Shared"/>, here over a
/// block of the plaintext pipes' own pool instead. Stream's own return the array as it is, with the
/// plaintext it carried there for the pool's next renter, which the plaintext pipes never allow
/// (SECURITY.md); and an array of that pool's may be moved by the garbage collector while it holds
/// plaintext, leaving a copy nobody clears. The plaintext pool's blocks are pinned and zeroed on return.
/// </summary>
public sealed partial class OssuaryStream
{
    // The plaintext pool's largest pooled block: a read returns what has arrived, which the pipe's
    // thresholds keep to a few frames, and a larger write goes through in pieces (of this size, as WriteAsync's).
    private const int ScratchLimit = 64 * 1024;

    /// <summary>
    /// As <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>, blocking the calling thread while it waits, on work
    /// that needs a free thread-pool thread (see the remarks on <see cref="OssuaryStream"/>).
    /// </summary>
    /// <exception cref="OssuaryException">The connection failed; <see cref="OssuaryException.Reason"/> says why.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed, also while the read waited.</exception>
    /// <exception cref="InvalidOperationException">The stream is not authenticated, or another read is waiting, or the thread pool had no free thread to run the read for 10 s (the read is left pending).</exception>
    public override int Read(Span<byte> buffer)
    {
        IMemoryOwner<byte> scratch = PlaintextMemoryPool.Instance.Rent(Math.Min(buffer.Length, ScratchLimit));
        bool handedOver = false;
        try
        {
            Memory<byte> into = scratch.Memory[..Math.Min(buffer.Length, ScratchLimit)];
            int read = ReadIntoScratch(into, scratch, nameof(Read), ref handedOver);
            into.Span[..read].CopyTo(buffer);
            return read;
        }
        finally
        {
            if (!handedOver)
            {
                scratch.Dispose();
            }
        }
    }

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        // One write for the whole span (see EnterWrite): another at once is refused, not interleaved between pieces.
        EnterWrite();
        Task? left = null;
        try
        {
            using IMemoryOwner<byte> scratch = PlaintextMemoryPool.Instance.Rent(Math.Min(buffer.Length, ScratchLimit));
            Memory<byte> block = scratch.Memory;
            do
            {
                int count = Math.Min(buffer.Length, block.Length);
                buffer[..count].CopyTo(block.Span);
                Task writing = WriteClaimedAsync(block[..count], leaveWrite: false, CancellationToken.None).AsTask();
                try
                {
                    PoolBoundWait.Result(writing, nameof(Write));
                }
                catch (InvalidOperationException) when (!writing.IsCompleted)
                {
                    // Given up on a starved pool: the piece was copied into the connection before it waited, but the
                    // write is still the stream's one write until it ends, so another is refused rather than interleaved.
                    left = writing;
                    throw;
                }

                buffer = buffer[count..];
            }
            while (!buffer.IsEmpty);
        }
        finally
        {
            if (left is null)
            {
                LeaveWrite();
            }
            else
            {
                _ = left.ContinueWith(static (_, stream) => ((OssuaryStream)stream!).LeaveWrite(), this,
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
    }

    /// <inheritdoc />
    public override void CopyTo(Stream destination, int bufferSize)
    {
        ValidateCopyToArguments(destination, bufferSize);
        IMemoryOwner<byte> scratch = PlaintextMemoryPool.Instance.Rent(Math.Min(bufferSize, ScratchLimit));
        bool handedOver = false;
        try
        {
            Memory<byte> block = scratch.Memory;
            int read;
            while ((read = ReadIntoScratch(block, scratch, nameof(CopyTo), ref handedOver)) != 0)
            {
                destination.Write(block.Span[..read]);
            }
        }
        finally
        {
            if (!handedOver)
            {
                scratch.Dispose();
            }
        }
    }

    /// <summary>
    /// A synchronous read into <paramref name="scratch"/>'s memory. One given up on a starved pool (see
    /// <see cref="PoolBoundWait"/>) may still fill it: the block is then handed over to that read, and goes
    /// back to the pool once the read ends, not under it; else the caller returns it.
    /// </summary>
    private int ReadIntoScratch(Memory<byte> into, IMemoryOwner<byte> scratch, string member, ref bool handedOver)
    {
        Task<int> reading = ReadAsync(into).AsTask();
        try
        {
            return PoolBoundWait.Result(reading, member);
        }
        catch (InvalidOperationException) when (!reading.IsCompleted)
        {
            handedOver = true;
            _ = reading.ContinueWith(static (_, block) => ((IMemoryOwner<byte>)block!).Dispose(), scratch,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }

    /// <inheritdoc />
    public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
    {
        ValidateCopyToArguments(destination, bufferSize);
        using IMemoryOwner<byte> scratch = PlaintextMemoryPool.Instance.Rent(Math.Min(bufferSize, ScratchLimit));
        Memory<byte> block = scratch.Memory;
        int read;
        while ((read = await ReadAsync(block, cancellationToken).ConfigureAwait(false)) != 0)
        {
            await destination.WriteAsync(block[..read], cancellationToken).ConfigureAwait(false);
        }
    }
}
