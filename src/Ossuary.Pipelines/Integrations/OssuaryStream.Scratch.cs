using System.Buffers;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The members Stream implements over an array from <see cref="ArrayPool{T}.Shared"/>: the same,
/// except that the array is cleared before it goes back. Stream's own return it as it is, with the
/// plaintext it carried there for the pool's next renter, which the plaintext pipes never allow (SECURITY.md).
/// </summary>
public sealed partial class OssuaryStream
{
    private const int ReadScratchLimit = 4 * Protocol.OssuarySession.MaxPlaintextLength;

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        // A read returns what has arrived, which the pipe's thresholds keep to a few frames: the
        // scratch need not be as large as the caller's buffer, and only what was read is cleared.
        byte[] scratch = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length, ReadScratchLimit));
        int read = 0;
        try
        {
            read = Read(scratch, 0, Math.Min(buffer.Length, scratch.Length));
            scratch.AsSpan(0, read).CopyTo(buffer);
            return read;
        }
        finally
        {
            scratch.AsSpan(0, read).Clear();
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            buffer.CopyTo(scratch);
            Write(scratch, 0, buffer.Length);
        }
        finally
        {
            scratch.AsSpan(0, buffer.Length).Clear();
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <inheritdoc />
    public override void CopyTo(Stream destination, int bufferSize)
    {
        ValidateCopyToArguments(destination, bufferSize);
        byte[] scratch = ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            int read;
            while ((read = Read(scratch, 0, scratch.Length)) != 0)
            {
                destination.Write(scratch, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch, clearArray: true);
        }
    }

    /// <inheritdoc />
    public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
    {
        ValidateCopyToArguments(destination, bufferSize);
        byte[] scratch = ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            int read;
            while ((read = await ReadAsync(scratch, cancellationToken).ConfigureAwait(false)) != 0)
            {
                await destination.WriteAsync(scratch.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch, clearArray: true);
        }
    }
}
