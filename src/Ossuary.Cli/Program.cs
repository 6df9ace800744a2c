using System.CommandLine;
using Ossuary.Cli;
using Ossuary.Cli.Commands;

var root = new RootCommand("ossuary: encrypted, authenticated connections with Ossuary v1 (wire-compatible with libossuary).")
{
    KeyCommands.Keygen(),
    KeyCommands.Pubkey(),
    ListenCommand.Create(),
    ConnectCommand.Create(),
    TransferCommands.Send(),
    TransferCommands.Receive(),
    DemoCommand.Create(),
    BenchCommand.Create(),
};

ParseResult parse = root.Parse(args);
int exitCode = await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });

// A missing or unknown argument is bad input (2), not a failure (System.CommandLine's 1).
return parse.Errors.Count > 0 ? ExitCodes.BadInput : exitCode;
