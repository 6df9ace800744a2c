namespace Ossuary.Cli;

/// <summary>A failure the user can act on: one line on stderr and an exit code, never a stack trace.</summary>
internal sealed class CliException(string message, int exitCode = ExitCodes.Failure) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>The tool's exit codes; scripts can tell a bad argument from an untrusted server.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int BadInput = 2;
    public const int Untrusted = 3;
    public const int Network = 4;
}
