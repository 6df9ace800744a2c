using System.Runtime.InteropServices;

namespace Ossuary.Cli;

/// <summary>
/// Standard output written with write(2), at the offset the descriptor shares with the shell and
/// with stderr. A .NET <see cref="FileStream"/> over a regular file writes with pwrite at an offset
/// of its own and never moves the shared one, so in <c>ossuary listen &gt; log 2&gt;&amp;1</c> the
/// next stderr line, or the next command of <c>{ ossuary ...; echo done; } &gt; log</c>, wrote over
/// what the tool had written. A failed write is an <see cref="IOException"/> whose HResult is the
/// errno (EPIPE 32, ENOSPC 28), as the console stream, which drops EPIPE without a word, never says.
/// </summary>
internal sealed class StdoutStream : Stream
{
    private const int Descriptor = 1;
    private const int BadDescriptor = 9; // EBADF, Linux and macOS

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (ClosedStdio.Stdout && !buffer.IsEmpty)
        {
            // What took the closed descriptor's number is no reader of ours: bytes written there are lost.
            throw new IOException("it is closed", BadDescriptor);
        }

        while (!buffer.IsEmpty)
        {
            nint written = NativeStdio.Write(Descriptor, buffer, buffer.Length);
            if (written < 0)
            {
                int error = Marshal.GetLastPInvokeError();
                if (error == NativeStdio.Interrupted)
                {
                    continue;
                }

                if (error == NativeStdio.WouldBlock)
                {
                    // A full pipe on a descriptor a parent made non-blocking (node.js does): wait until
                    // it takes more, rather than fail a transfer the reader is still taking.
                    NativeStdio.WaitUntilReady(Descriptor, NativeStdio.PollOut);
                    continue;
                }

                throw NativeStdio.Failure(error);
            }

            buffer = buffer[(int)written..];
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <remarks>
    /// On the thread pool, as a file stream over a blocking descriptor does, and from the caller's
    /// memory: the base class would copy memory it cannot see as an array into the shared array
    /// pool, and decrypted bytes must not linger there.
    /// </remarks>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled(cancellationToken)
            : new ValueTask(Task.Run(() => Write(buffer.Span), cancellationToken));

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
        // Nothing is held back: every write went to the descriptor.
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
