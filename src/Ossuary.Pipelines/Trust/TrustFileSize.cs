namespace Ossuary.Pipelines.Trust;

/// <summary>
/// The most of a trust file (authorized keys, known hosts) that is read. A key line is about a hundred
/// bytes, so the bound holds some 150,000 keys with comments; a longer file is refused, naming it, once
/// that much has been read. Without one, a file was read whole however long: every key of a huge file (a
/// log or a dump named by mistake, or a file a writer kept growing while it was read) was held in memory,
/// the watcher's copy of its text too, and a known-hosts file was read so for each connection's check.
/// The bytes read are counted, not the size the file says it has: a file grown while read is cut off too.
/// </summary>
internal static class TrustFileSize
{
    /// <summary>The most bytes of a trust file read: 16 MiB.</summary>
    public const int MaxBytes = 16 * 1024 * 1024;

    /// <summary>
    /// <paramref name="file"/>, read through a stream that throws once more than <see cref="MaxBytes"/>
    /// have been read from it; disposing it disposes the file.
    /// </summary>
    /// <param name="file">The opened trust file.</param>
    /// <param name="path">Names it in the message.</param>
    /// <param name="kind">What it is, for the message ("authorized-keys").</param>
    /// <param name="leaveOpen">Leave the file open when the stream is disposed.</param>
    public static Stream Capped(Stream file, string path, string kind, bool leaveOpen = false) => new CappedStream(file, path, kind, leaveOpen);

    /// <summary>The refusal of a file longer than <see cref="MaxBytes"/>: malformed, as a line longer than any key line is.</summary>
    public static FormatException TooLong(string path, string kind) =>
        new($"{path}: the {kind} file is longer than {MaxBytes / (1024 * 1024)} MiB, which no {kind} file is (some 150,000 lines); refusing to read it. Name the right file, or split the keys between servers.");

    /// <summary>Reads <paramref name="file"/> to its end, refused past <see cref="MaxBytes"/>.</summary>
    /// <exception cref="FormatException">It is longer; the message names it.</exception>
    public static byte[] ReadAll(Stream file, string path, string kind)
    {
        using var copy = new MemoryStream();
        using (Stream capped = Capped(file, path, kind, leaveOpen: true)) // the caller holds the file
        {
            capped.CopyTo(copy);
        }

        return copy.ToArray();
    }

    private sealed class CappedStream(Stream file, string path, string kind, bool leaveOpen) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer) => Count(file.Read(buffer));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await file.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing && !leaveOpen)
            {
                file.Dispose();
            }

            base.Dispose(disposing);
        }

        private int Count(int read)
        {
            _read += read;
            return _read > MaxBytes ? throw TooLong(path, kind) : read;
        }
    }
}
