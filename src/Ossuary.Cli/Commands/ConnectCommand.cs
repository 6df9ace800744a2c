using System.CommandLine;
using Ossuary.Cli.Net;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Commands;

/// <summary><c>ossuary connect HOST:PORT</c>: stdin to the server, the server's bytes to stdout.</summary>
internal static class ConnectCommand
{
    public static Option<string?> WaitOption() => CliOptions.Seconds(
        "--wait",
        "After the end of stdin, close once nothing has moved either way for this long (idle time, not a deadline); " +
        "'forever' waits until the peer closes, as a side that has only received always does.",
        fallback: 1.0,
        allowForever: true);

    public static Option<string?> TimeoutOption() => CliOptions.Seconds(
        "--timeout", "Give up if the TCP connection and the Ossuary handshake take longer than this (nc's -w).", fallback: null);

    public static Option<bool> VerboseOption() => new("--verbose", "-v") { Description = "Say which server was reached and with which key." };

    public static Command Create()
    {
        var target = new Argument<string>("HOST:PORT") { Description = "The server to connect to." };
        var wait = WaitOption();
        var timeout = TimeoutOption();
        timeout.Aliases.Add("-w");
        var verbose = VerboseOption();
        var trust = new ClientTrust();
        var command = new Command("connect", "Connect to an Ossuary server: stdin goes to it, what it sends goes to stdout.") { target, wait, timeout, verbose };
        trust.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            HostPort server = HostPort.Parse(parse.GetValue(target)!);
            OssuaryClientOptions options = trust.CreateOptions(parse, server, stdinFree: false, out OssuaryIdentity? identity);
            using (identity)
            {
                Netcat.StartReadingStdin();
                SecureClient client = await SecureClient.ConnectAsync(server, options, CliOptions.Get(parse, timeout), cancellationToken);
                int outcome;
                await using (client)
                {
                    outcome = await RunAsync(client, server, parse.GetValue(verbose), CliOptions.Get(parse, wait), cancellationToken);
                }

                // The end of stdin only means every byte was handed to the connection: a server that
                // stopped reading and then closed left the last of them here, and disposal gives up on
                // one that stopped reading and drops what it had not taken.
                if (outcome == ExitCodes.Success && UnsentStdin.Count(client.Secure) is > 0 and long unsent)
                {
                    throw new CliException(UnsentStdin.Describe(unsent, server.ToString()));
                }

                return outcome == ExitCodes.Success && client.Socket.OutputDropped
                    ? throw new CliException($"{server} stopped reading; the last bytes sent to it and the close were dropped")
                    : outcome;
            }
        }));
        return command;
    }

    private static async Task<int> RunAsync(SecureClient client, HostPort server, bool verbose, TimeSpan? idle, CancellationToken cancellationToken)
    {
        if (verbose)
        {
            Console.Error.WriteLine($"ossuary: connected to {server}, server key {client.Secure.Feature.RemotePublicKey}");
        }

        NetcatResult session = await Netcat.RunAsync(client.Secure, client.Socket, idle, cancellationToken);
        switch (session.End)
        {
            case NetcatEnd.ClosedOverLateData:
                throw new CliException(session.DescribeLate(server.ToString()));
            case NetcatEnd.ClosedUnconfirmed:
                throw new CliException(session.DescribeUnconfirmed(server.ToString()));
            case NetcatEnd.ClosedUnanswered:
                Console.Error.WriteLine(
                    $"ossuary: nothing came from {server} for {CliOptions.Describe(idle)} after the end of stdin; closed the connection " +
                    "(anything it sends later is lost; --wait forever waits until the server closes)");
                return ExitCodes.Success;
            case NetcatEnd.PeerClosedBeforeEndOfInput:
                throw new CliException($"{server} closed the connection before the end of stdin; the rest of stdin was not sent");
            default:
                return ExitCodes.Success;
        }
    }
}
