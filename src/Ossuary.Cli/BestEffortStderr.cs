using System.Text;

namespace Ossuary.Cli;

/// <summary>
/// Standard error for the tool's messages, which are best effort: a line that cannot be written (a
/// full disk under the log, a stderr the shell closed whose number the runtime's own pipe took) is
/// dropped, and the command goes on. <see cref="Console.Error"/> throws then (IOException for
/// ENOSPC, UnauthorizedAccessException for EBADF), and it threw out of the command and out of the
/// handler that reports failures, so the runtime aborted the process (SIGABRT, exit 134): a server
/// as it announced its port, <c>keygen</c> after it had made the key, <c>send</c> after the receiver
/// had confirmed the file. The exit code still says how the command went.
/// </summary>
internal sealed class BestEffortStderr(TextWriter inner) : TextWriter
{
    /// <summary>Makes <see cref="Console.Error"/> best effort, or silent where the shell closed stderr.</summary>
    public static void Install() => Console.SetError(ClosedStdio.Stderr ? TextWriter.Null : new BestEffortStderr(Console.Error));

    public override Encoding Encoding => inner.Encoding;

    public override IFormatProvider FormatProvider => inner.FormatProvider;

    // Each call is one call of the inner writer, which Console synchronises: a line stays whole.
    public override void Write(char value) => Try(() => inner.Write(value));

    public override void Write(string? value) => Try(() => inner.Write(value));

    public override void Write(char[] buffer, int index, int count) => Try(() => inner.Write(buffer, index, count));

    public override void WriteLine() => Try(inner.WriteLine);

    public override void WriteLine(string? value) => Try(() => inner.WriteLine(value));

    public override void Flush() => Try(inner.Flush);

    private static void Try(Action write)
    {
        try
        {
            write();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Nowhere left to say it.
        }
    }
}
