namespace Ossuary.Cli;

/// <summary>
/// Where a file is named, <c>-</c> means standard input or output (as in <c>wg genkey | wg pubkey</c>),
/// and a directory named where a file is expected is said to be one.
/// </summary>
internal static class StdPaths
{
    public const string Dash = "-";

    public static bool IsStdio(string path) => path == Dash;

    /// <summary>Fails with exit 2 when <paramref name="path"/> is a directory or does not exist.</summary>
    public static void RequireFile(string path, string what, string? hint = null)
    {
        if (Directory.Exists(path))
        {
            throw new CliException($"{what} '{path}' is a directory, not a file", ExitCodes.BadInput);
        }

        if (!File.Exists(path))
        {
            throw new CliException($"{what} '{path}' does not exist{(hint is null ? "" : $" ({hint})")}", ExitCodes.BadInput);
        }
    }

    /// <summary>
    /// stdout as a <see cref="StdoutStream"/> where it can be: the console stream drops a write to a
    /// closed pipe (EPIPE) without a word, and .NET ignores SIGPIPE, so the output would be lost with
    /// exit 0; a file stream writes a regular file at an offset of its own, over what stderr and the
    /// shell write after it.
    /// </summary>
    public static Stream OpenStdout() => OperatingSystem.IsWindows() ? Console.OpenStandardOutput() : new StdoutStream();

    /// <summary>
    /// stdin, for a file's or a key's bytes: fails with exit 2 when the shell closed it (<c>&lt;&amp;-</c>),
    /// where a read would wait forever (see <see cref="ClosedStdio"/>). <paramref name="what"/> says what
    /// was to be read from it (<c>the file to send</c>).
    /// </summary>
    public static Stream OpenStdin(string what)
    {
        RequireStdin(what);
        return OpenStdin();
    }

    /// <summary>
    /// stdin as a stream: read with read(2) where redirected (<see cref="StdinStream"/>, which waits on
    /// a non-blocking descriptor), the console's own on a terminal and on Windows.
    /// </summary>
    public static Stream OpenStdin() =>
        OperatingSystem.IsWindows() || !Console.IsInputRedirected ? Console.OpenStandardInput() : new StdinStream();

    /// <summary>Fails with exit 2, naming <paramref name="what"/> was to be read, when the shell closed stdin.</summary>
    private static void RequireStdin(string what)
    {
        if (ClosedStdio.Stdin)
        {
            throw new CliException($"standard input is closed; {what} is read from it", ExitCodes.BadInput);
        }
    }

    /// <summary>Writes <paramref name="bytes"/> (<paramref name="what"/>, for the message) to stdout; exit 1 if they could not be.</summary>
    public static void WriteStdout(ReadOnlySpan<byte> bytes, string what)
    {
        try
        {
            using Stream stdout = OpenStdout();
            stdout.Write(bytes);
            stdout.Flush();
        }
        catch (IOException ex)
        {
            throw new CliException($"cannot write {what} to standard output: {ex.Message}");
        }
    }

    /// <summary>Fails with exit 2 when <paramref name="path"/> is empty or names a directory (a file to be written must not be one).</summary>
    public static void RequireNotDirectory(string path, string what)
    {
        if (path.Length == 0)
        {
            // .NET's own refusal names a parameter ("path") the user never saw, as an unexpected error.
            throw new CliException($"{what} name is empty", ExitCodes.BadInput);
        }

        if (Directory.Exists(path))
        {
            throw new CliException($"{what} '{path}' is a directory, not a file", ExitCodes.BadInput);
        }
    }
}
