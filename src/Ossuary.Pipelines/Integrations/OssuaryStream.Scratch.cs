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
    /// <exception cref="InvalidOperationException">The stream is not authenticated, or another read is waiting.</exception>
    public override int Read(Span<byte> buffer)
    {
        using IMemoryOwner<byte> scratch = PlaintextMemoryPool.Instance.Rent(Math.Min(buffer.Length, ScratchLimit));
        Memory<byte> into = scratch.Memory[..Math.Min(buffer.Length, ScratchLimit)];
        int read = ReadAsync(into).AsTask().GetAwaiter().GetResult();
        into.Span[..read].CopyTo(buffer);
        return read;
    }

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        // One write for the whole span (see EnterWrite): another at once is refused, not interleaved between pieces.
        EnterWrite();
        try
        {
            using IMemoryOwner<byte> scratch = PlaintextMemoryPool.Instance.Rent(Math.Min(buffer.Length, ScratchLimit));
            Memory<byte> block = scratch.Memory;
            do
            {
                int count = Math.Min(buffer.Length, block.Length);
                buffer[..count].CopyTo(block.Span);
                WriteClaimedAsync(block[..count], leaveWrite: false, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                buffer = buffer[count..];
            }
            while (!buffer.IsEmpty);
        }
        finally
        {
            LeaveWrite();
        }
    }

    /// <inheritdoc />
    public override void CopyTo(Stream destination, int bufferSize)
    {
        ValidateCopyToArguments(destination, bufferSize);
        using IMemoryOwner<byte> scratch = PlaintextMemoryPool.Instance.Rent(Math.Min(bufferSize, ScratchLimit));
        Memory<byte> block = scratch.Memory;
        int read;
        while ((read = ReadAsync(block).AsTask().GetAwaiter().GetResult()) != 0)
        {
            destination.Write(block.Span[..read]);
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
