using System.CommandLine;
using Ossuary.Pipelines;
using Ossuary.Samples.Telemetry.Commands;

namespace Ossuary.Samples.Telemetry;

/// <summary>
/// Ossuary telemetry sample: <c>fleet</c> makes keys, <c>server</c> counts readings from authenticated
/// devices, <c>load</c> simulates the devices. Exit codes: 0 success, 1 failure, 2 bad command line.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Ossuary telemetry sample: many authenticated devices, one Kestrel server. Exit codes: 0 success, 1 failure, 2 bad command line.")
        {
            FleetCommand.Create(),
            ServerCommand.Create(),
            LoadCommand.Create(),
            QueryCommand.Create(),
            ConsumeCommand.Create(),
        };
        // No response files: '@NAME' is a name, not the arguments a file NAME holds (a fleet or
        // database path taken from a folder others write to must not pick the command's arguments).
        ParseResult parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            // One error (the README's promise); a word the parser did not know first, as the ossuary tool does.
            Console.Error.WriteLine(parse.UnmatchedTokens.Count > 0
                ? $"error: unrecognized command or argument '{parse.UnmatchedTokens[0]}'"
                : $"error: {parse.Errors[0].Message}");

            Console.Error.WriteLine("Try '--help' for the commands and their options.");
            return 2;
        }

        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or NATS.Client.Core.NatsException or IOException or FormatException or InvalidOperationException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            string reason = e is OssuaryException ossuary ? $" ({ossuary.Reason})" : "";
            Console.Error.WriteLine($"error{reason}: {e.Message.ReplaceLineEndings(" ")}");
            return 1;
        }
    }
}
