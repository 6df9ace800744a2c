using System.CommandLine;
using System.CommandLine.Help;
using Ossuary.Cli;
using Ossuary.Cli.Commands;

// Before anything is said there: a message that cannot be written must not end the command.
BestEffortStderr.Install();

// Before any file is written: a write past the file size limit fails as a full disk does, and the
// command reports it (a receive tells its sender and removes its partial file), where SIGXFSZ killed it.
FileSizeLimit.FailWritesPastIt();

var root = new RootCommand(
    """
    ossuary: encrypted, authenticated connections with Ossuary v1 (wire-compatible with libossuary).

    Exit codes: 0 success; 1 failure (a peer that refused this client or failed, data that could not be
    delivered, a full disk or an I/O error); 2 bad input (arguments, key and trust files, a file that
    already exists where one would be written without --force); 3 untrusted or changed server key;
    4 network (a refused TCP connection, unreachable host, port in use, --timeout).
    Stopped by Ctrl+C, SIGTERM or SIGHUP, a command cleans up and says so, then ends by that signal
    (a shell reports 130, 143, 129), unless it still succeeded.
    Wherever a file is named, '-' means stdin or stdout.
    """)
{
    KeyCommands.Keygen(),
    KeyCommands.Pubkey(),
    ListenCommand.Create(),
    ConnectCommand.Create(),
    TransferCommands.Send(),
    TransferCommands.Receive(),
    KnownHostsCommand.Create(),
    DemoCommand.Create(),
    BenchCommand.Create(),
};

// No response files: an argument '@NAME' is what it says (a file to send, a --name), never the
// arguments that a file NAME holds, which whoever could write NAME chose (another file to send,
// another host to send it to).
ParseResult parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
{
    // One error and a hint on stderr, never the whole help on stdout: `ossuary connect ... > file`
    // must not fill the file with usage text. A word the parser did not know comes first: the
    // parser also reports a mistyped command as one not given, and the rest may be its consequence.
    Console.Error.WriteLine(parse.UnmatchedTokens.Count > 0
        ? $"ossuary: unrecognized command or argument '{parse.UnmatchedTokens[0]}'"
        : $"ossuary: {parse.Errors[0].Message}");

    string command = parse.CommandResult.Command == root ? "ossuary" : $"ossuary {string.Join(" ", CommandPath(parse.CommandResult.Command))}";
    Console.Error.WriteLine($"Try '{command} --help' for more information.");
    return ExitCodes.BadInput;
}

// Ctrl+C, SIGTERM and SIGHUP cancel the command's token, so that it can clean up (receive removes
// its partial file) and say why it stopped; one that does not finish within 3 s is ended. A command
// that failed after one ends by that signal (see StopSignals), as a shell expects.
// The handlers go before the check, not after it: a signal between the two was handled (the process kept)
// and then not looked for, so a failed command exited 1 where a shell expects 128 + the signal's number.
int exitCode;
var signals = new StopSignals();
try
{
    exitCode = await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null }, signals.Token);
}
finally
{
    signals.Dispose();
}

if (exitCode != ExitCodes.Success)
{
    signals.EndBySignalIfReceived();
}

return exitCode;

IEnumerable<string> CommandPath(Command command)
{
    var names = new Stack<string>();
    for (Command? current = command; current is not null && current != root; current = current.Parents.OfType<Command>().FirstOrDefault())
    {
        names.Push(current.Name);
    }

    return names;
}
