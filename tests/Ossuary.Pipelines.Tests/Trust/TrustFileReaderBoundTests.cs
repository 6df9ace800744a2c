using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Trust;

/// <summary>
/// The public parses over a caller's reader (<see cref="OssuaryKnownHosts.Parse"/>,
/// <see cref="OssuaryAuthorizedKeys.Parse"/>) read at most what a trust file may hold, 16 Mi characters:
/// they read to the reader's end, however far, so an endless reader of short lines (a generator, a
/// socket) was read for ever. The readers here make their lines as they are read.
/// </summary>
public sealed class TrustFileReaderBoundTests
{
    public static TheoryData<string> Kinds => ["known-hosts", "authorized-keys"];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void AReaderLongerThanATrustFileIsRefusedOnceThatMuchIsRead(string kind)
    {
        var reader = new CommentLines(TrustFileSize.MaxBytes + 1024L * 1024);

        FormatException refused = Assert.Throws<FormatException>(() => Parse(kind, reader, "generated"));

        Assert.StartsWith($"generated: the {kind} file is longer than 16 MiB", refused.Message, StringComparison.Ordinal);
        Assert.Equal(TrustFileSize.MaxBytes + 1L, reader.Given); // not a character more than the one past the bound
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void AReaderOfExactlyTheBoundIsReadWhole(string kind)
    {
        var reader = new CommentLines(TrustFileSize.MaxBytes);

        Parse(kind, reader, "generated");

        Assert.Equal(TrustFileSize.MaxBytes, reader.Given);
    }

    private static void Parse(string kind, TextReader reader, string source)
    {
        if (kind == "known-hosts")
        {
            _ = OssuaryKnownHosts.Parse(reader, source);
        }
        else
        {
            _ = OssuaryAuthorizedKeys.Parse(reader, source);
        }
    }

    /// <summary>Comment lines ("# x" and a line break), <paramref name="length"/> characters of them, made as they are read; counts what it gave.</summary>
    private sealed class CommentLines(long length) : TextReader
    {
        private const string Line = "# a comment line of a generated trust file\n";

        public long Given { get; private set; }

        public override int Peek() => Given < length ? Line[(int)(Given % Line.Length)] : -1;

        public override int Read()
        {
            int c = Peek();
            if (c != -1)
            {
                Given++;
            }

            return c;
        }

        public override int Read(char[] buffer, int index, int count) => Read(buffer.AsSpan(index, count));

        public override int Read(Span<char> buffer)
        {
            int read = 0;
            while (read < buffer.Length && Read() is var c and not -1)
            {
                buffer[read++] = (char)c;
            }

            return read;
        }
    }
}
