using System.CommandLine;
using Ossuary.Cli.Net;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Commands;

/// <summary><c>ossuary connect HOST:PORT</c>: stdin to the server, the server's bytes to stdout.</summary>
internal static class ConnectCommand
{
    public static Command Create()
    {
        var target = new Argument<string>("HOST:PORT") { Description = "The server to connect to." };
        var wait = new Option<double>("--wait") { Description = "Seconds to keep receiving after the end of stdin before closing.", DefaultValueFactory = _ => 1.0 };
        var trust = new ClientTrust();
        var command = new Command("connect", "Connect to an Ossuary server: stdin goes to it, what it sends goes to stdout.") { target, wait };
        trust.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            HostPort server = HostPort.Parse(parse.GetValue(target)!);
            OssuaryClientOptions options = trust.CreateOptions(parse, server, out OssuaryIdentity? identity);
            using (identity)
            {
                await using SocketPipe socket = await SocketPipe.ConnectAsync(server, cancellationToken);
                await using OssuaryDuplexPipe secure = await OssuaryDuplexPipe.ConnectAsync(socket, options, cancellationToken);
                Console.Error.WriteLine($"ossuary: connected to {server}, server key {secure.Feature.RemotePublicKey}");
                await Netcat.RunAsync(secure, TimeSpan.FromSeconds(parse.GetValue(wait)), cancellationToken);
                return ExitCodes.Success;
            }
        }));
        return command;
    }
}
