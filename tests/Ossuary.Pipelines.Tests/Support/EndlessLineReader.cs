namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Text without a line break that never ends (<c>--authorized-keys - &lt; /dev/zero</c>, a log piped
/// in by mistake), given a line at a time by <see cref="TextReader.ReadLine"/> or a character at a
/// time; throws past <see cref="Cap"/> characters, so that a reader that takes it all fails the test
/// instead of filling the memory.
/// </summary>
internal sealed class EndlessLineReader(string start = "") : TextReader
{
    public const int Cap = 16 * 1024 * 1024;

    public long CharsRead { get; private set; }

    public override int Peek() => CharsRead < start.Length ? start[(int)CharsRead] : 'a';

    public override int Read()
    {
        if (CharsRead >= Cap)
        {
            throw new InvalidOperationException($"read {CharsRead} characters of one line");
        }

        int c = Peek();
        CharsRead++;
        return c;
    }
}
