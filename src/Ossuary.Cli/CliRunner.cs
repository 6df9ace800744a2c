using System.Net.Sockets;
using Ossuary.Pipelines;

namespace Ossuary.Cli;

/// <summary>Runs a command's body and turns every failure into one line on stderr and an exit code.</summary>
internal static class CliRunner
{
    public static int Run(Func<int> body) => RunAsync(() => Task.FromResult(body())).GetAwaiter().GetResult();

    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception ex)
        {
            (string message, int code) = Describe(ex);
            Console.Error.WriteLine($"ossuary: {message}");
            return code;
        }
    }

    private static (string Message, int Code) Describe(Exception ex) => ex switch
    {
        CliException cli => (cli.Message, cli.ExitCode),
        OssuaryException { InnerException: CliException cli } => (cli.Message, cli.ExitCode),
        OssuaryException { Reason: OssuaryErrorReason.UntrustedServer } ossuary => (ossuary.Message, ExitCodes.Untrusted),

        // The peer sent Disconnect (error): it failed or was stopped, or it refused the client's key,
        // which a server does right after the handshake and the client cannot tell apart: say both.
        OssuaryException { Reason: OssuaryErrorReason.ConnectionFailed, InnerException: null } ossuary =>
            ($"connection failed ({ossuary.Reason}): the peer ended the connection with an error: it failed or was stopped, " +
             "or, right after connecting, it refused this client (a server that admits only authorized client keys does this " +
             "when --key is missing or not among them)", ExitCodes.Failure),
        OssuaryException ossuary => ($"connection failed ({ossuary.Reason}): {ossuary.Message}", ExitCodes.Failure),
        OperationCanceledException => ("interrupted", ExitCodes.Failure),
        SocketException socket => ($"network error: {socket.Message}", ExitCodes.Network),
        // A full disk or an I/O error is the system's failure, not a bad argument or file.
        IOException when SystemFailure.Is(ex) => (ex.Message, ExitCodes.Failure),
        UnauthorizedAccessException or IOException => (ex.Message, ExitCodes.BadInput),
        OutOfMemoryException => ("out of memory", ExitCodes.Failure),
        _ => (UnexpectedError.Describe(ex), ExitCodes.Failure),
    };
}
