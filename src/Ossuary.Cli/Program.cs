using System.CommandLine;
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
};

return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
