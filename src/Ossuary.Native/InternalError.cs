using System.Text.Unicode;

namespace Ossuary.Native;

/// <summary>
/// Says on stderr that an export failed with an exception its code does not expect (a bug of ours,
/// or of a library below us): the C caller sees only the export's failure value, the same -1 or
/// NULL as for a bad argument, and without this line the cause was gone for good.
/// </summary>
/// <remarks>
/// The expected failures stay quiet: a bad handle or argument and a peer's bad packet never throw
/// (the exports and the session answer them with a value), a full heap is documented in ossuary.h,
/// and a libsodium that cannot be loaded is said once by <see cref="LibsodiumLoader"/>. The line is
/// built in a fixed buffer on the stack and cut to fit it, so that a report needs no heap (it may
/// come when the heap is short) and a long message cannot make it grow; one write(2) of at most
/// <see cref="MaxLine"/> bytes, below PIPE_BUF, so that reports from two threads never interleave.
/// </remarks>
internal static class InternalError
{
    /// <summary>The longest line written, its newline included.</summary>
    private const int MaxLine = 512;

    /// <summary>Writes the one line for <paramref name="exception"/>, thrown out of the export <paramref name="function"/>, unless it is an expected failure.</summary>
    /// <remarks>Never throws: it runs in the exports' last catch, and nothing may unwind into C.</remarks>
    public static void Report(ReadOnlySpan<byte> function, Exception exception)
    {
        if (IsExpected(exception))
        {
            return;
        }

        try
        {
            Span<byte> buffer = stackalloc byte[MaxLine];
            var line = new Line(buffer[..^1]);
            line.Append("libossuary: internal error in "u8);
            line.Append(function);
            line.Append(" (its failure value was returned): "u8);
            line.Append(exception);
            if (exception.InnerException is { } inner)
            {
                line.Append(" <- "u8);
                line.Append(inner);
            }

            if (FirstFrame(exception) is { Length: > 0 } frame)
            {
                line.Append(" at "u8);
                line.Append(frame);
            }

            buffer[line.Length] = (byte)'\n';
            StandardError.WriteLine(buffer[..(line.Length + 1)]);
        }
        catch (Exception)
        {
            // A report that fails (no memory for the exception's text) has nowhere to go, and must not unwind into C.
        }
    }

    /// <summary>The failures an export's value already accounts for, which are not ours to report.</summary>
    /// <remarks>
    /// Without libsodium every call that needs it throws (Geralt's PlatformNotSupportedException
    /// around a DllNotFoundException, or another for a version too old): LibsodiumLoader has said
    /// so once, and it is asked again only here, on a failure, so that a libsodium put in place
    /// since makes the next failure loud again.
    /// </remarks>
    internal static bool IsExpected(Exception exception) =>
        exception is OutOfMemoryException // ossuary.h: the library's heap is full
            || !LibsodiumLoader.IsStarted();

    /// <summary>Where the exception was thrown: the first line of its stack trace, "at " and the offset dropped; empty when there is none.</summary>
    private static ReadOnlySpan<char> FirstFrame(Exception exception)
    {
        ReadOnlySpan<char> trace = exception.StackTrace;
        int end = trace.IndexOfAny('\r', '\n');
        ReadOnlySpan<char> frame = (end < 0 ? trace : trace[..end]).Trim();
        if (frame.StartsWith("at ", StringComparison.Ordinal))
        {
            frame = frame[3..];
        }

        int offset = frame.IndexOf(" + 0x", StringComparison.Ordinal);
        return offset < 0 ? frame : frame[..offset];
    }

    /// <summary>UTF-8 text laid into a fixed buffer: what does not fit is dropped, and control characters become spaces to keep it one line.</summary>
    private ref struct Line(Span<byte> room)
    {
        private readonly Span<byte> _room = room;

        public int Length { get; private set; }

        public void Append(ReadOnlySpan<byte> text)
        {
            int count = Math.Min(text.Length, _room.Length - Length);
            text[..count].CopyTo(_room[Length..]);
            Length += count;
        }

        public void Append(ReadOnlySpan<char> text)
        {
            Span<byte> free = _room[Length..];
            _ = Utf8.FromUtf16(text, free, out _, out int written, replaceInvalidSequences: true, isFinalBlock: true);
            foreach (ref byte b in free[..written])
            {
                if (b < 0x20 || b == 0x7f)
                {
                    b = (byte)' ';
                }
            }

            Length += written;
        }

        /// <summary>The exception's type and message ("CryptographicException: Error computing signature.").</summary>
        public void Append(Exception exception)
        {
            Append(exception.GetType().Name);
            Append(": "u8);
            Append(exception.Message);
        }
    }
}
