using System.Text;

namespace Ossuary.Cli;

/// <summary>
/// A command's report on stdout (<c>demo</c>'s transcript, <c>bench</c>'s table) that fails the
/// command when it cannot be written. <see cref="Console.Out"/> drops a write to a pipe whose reader
/// is gone without a word (EPIPE, and .NET ignores SIGPIPE): <c>ossuary bench | head -1</c> would
/// lose the table and still exit 0. A failed write ends the command with exit 1 naming standard output.
/// </summary>
internal sealed class StdoutReport : TextWriter
{
    private readonly StreamWriter _stdout = new(StdPaths.OpenStdout(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = true };
    private readonly string _what;

    /// <param name="what">What the report is, for the message (<c>the benchmark table</c>).</param>
    public StdoutReport(string what) => _what = what;

    public override Encoding Encoding => _stdout.Encoding;

    public override IFormatProvider FormatProvider => _stdout.FormatProvider;

    public override void Write(char value) => Guard(() => _stdout.Write(value));

    public override void Write(string? value) => Guard(() => _stdout.Write(value));

    public override void Write(char[] buffer, int index, int count) => Guard(() => _stdout.Write(buffer, index, count));

    public override void WriteLine(string? value) => Guard(() => _stdout.WriteLine(value));

    public override void Flush() => Guard(_stdout.Flush);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // What is left was flushed by each write (AutoFlush); a failure was reported there.
            try
            {
                _stdout.Dispose();
            }
            catch (IOException)
            {
            }
        }

        base.Dispose(disposing);
    }

    private void Guard(Action write)
    {
        try
        {
            write();
        }
        catch (IOException ex)
        {
            throw new CliException($"cannot write {_what} to standard output: {ex.Message}");
        }
    }
}
