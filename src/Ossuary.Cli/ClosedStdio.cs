using System.Globalization;

namespace Ossuary.Cli;

/// <summary>
/// Standard input or output that the shell closed (<c>&lt;&amp;-</c>, <c>&gt;&amp;-</c>). The number
/// does not stay free: a new descriptor takes the lowest free one, and the runtime's first is the
/// internal pipe it creates as it starts (Linux), read end and write end both held by this process.
/// A stdin that is that read end never ends (a <c>send -</c> or <c>pubkey -</c> waited forever, a
/// receive-only <c>listen --once</c> exited 1 as if stdin still held data); a stdout that is its
/// write end takes every byte written to it, lost with exit 0.
/// </summary>
/// <remarks>
/// No stream of the user's can look like this: a process that holds the write end of its own stdin
/// pipe never sees that stdin end either, and one that holds the read end of its own stdout pipe
/// would read back what it writes. A second descriptor for the same end (<c>&lt;&amp;3</c> with 3 left
/// open) is no sign. Elsewhere than Linux there is no /proc to ask, and nothing is detected.
/// </remarks>
internal static class ClosedStdio
{
    private const int ReadOnly = 0; // O_RDONLY
    private const int WriteOnly = 1; // O_WRONLY
    private const int AccessMode = 3; // O_ACCMODE

    private static readonly Lazy<bool> StdinClosed = new(() => HoldsOtherEnd(0, WriteOnly));
    private static readonly Lazy<bool> StdoutClosed = new(() => HoldsOtherEnd(1, ReadOnly));

    /// <summary>True when the shell closed stdin: there is nothing to read.</summary>
    public static bool Stdin => StdinClosed.Value;

    /// <summary>True when the shell closed stdout: nothing written there reaches anyone.</summary>
    public static bool Stdout => StdoutClosed.Value;

    /// <summary>True if <paramref name="descriptor"/> is a pipe whose other end (opened <paramref name="otherAccess"/>) this process holds too.</summary>
    private static bool HoldsOtherEnd(int descriptor, int otherAccess)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            string? pipe = LinkOf(descriptor);
            if (pipe is null || !pipe.StartsWith("pipe:", StringComparison.Ordinal))
            {
                return false;
            }

            foreach (string entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
            {
                if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int other)
                    && other != descriptor && LinkOf(other) == pipe && Access(other) == otherAccess)
                {
                    return true;
                }
            }

            return false;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false; // no /proc (a sandbox): the stream is taken as it is
        }
    }

    private static string? LinkOf(int descriptor)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{descriptor}").LinkTarget;
        }
        catch (IOException)
        {
            return null; // closed meanwhile (the directory listing's own descriptor)
        }
    }

    /// <summary>The descriptor's access mode (O_RDONLY, O_WRONLY, O_RDWR), from the octal flags in /proc/self/fdinfo; -1 if unknown.</summary>
    private static int Access(int descriptor)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/self/fdinfo/{descriptor}"))
            {
                if (line.StartsWith("flags:", StringComparison.Ordinal))
                {
                    return (int)(Convert.ToInt64(line["flags:".Length..].Trim(), 8) & AccessMode);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or FormatException)
        {
        }

        return -1;
    }
}
