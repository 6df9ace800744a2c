using System.CommandLine;
using Ossuary.Cli.Net;

namespace Ossuary.Cli.Commands;

/// <summary>
/// <c>ossuary known-hosts remove HOST:PORT</c> (ssh-keygen -R) and <c>ossuary known-hosts set HOST:PORT KEY</c>:
/// the upkeep a changed server key calls for.
/// </summary>
internal static class KnownHostsCommand
{
    public static Command Create()
    {
        var command = new Command("known-hosts", "Remove or replace a server's key in the known-hosts file.")
        {
            Remove(),
            Set(),
        };
        return command;
    }

    private static Option<string?> FileOption() => new("--known-hosts") { Description = "Known-hosts file (default ~/.ossuary/known_hosts)." };

    private static Command Remove()
    {
        var target = new Argument<string>("HOST:PORT") { Description = "The server whose lines to remove (its host-only lines too)." };
        var file = FileOption();
        var command = new Command("remove", "Remove every key recorded for a server; the old file is kept as FILE.old.") { target, file };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            HostPort server = HostPort.Parse(parse.GetValue(target)!);
            string path = parse.GetValue(file) ?? KnownHostsFile.DefaultPath;
            KnownHostsFile.Load(path); // refuses a malformed file before touching it
            if (!File.Exists(path))
            {
                throw new CliException($"known-hosts file '{path}' does not exist", ExitCodes.BadInput);
            }

            int removed = KnownHostsFile.Remove(path, server);
            if (removed == 0)
            {
                throw new CliException($"{path} holds no key for {server}", ExitCodes.Failure);
            }

            Console.Error.WriteLine($"ossuary: removed {removed} line(s) for {server} from {path}; the old file is {path}.old");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Set()
    {
        var target = new Argument<string>("HOST:PORT") { Description = "The server." };
        var key = new Argument<string>("KEY") { Description = "Its public key (64 hex characters)." };
        var file = FileOption();
        var command = new Command("set", "Record a server's key, replacing whatever the file held for it.") { target, key, file };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            HostPort server = HostPort.Parse(parse.GetValue(target)!);
            var publicKey = KeyFiles.ParsePublic(parse.GetValue(key)!, "KEY");
            string path = parse.GetValue(file) ?? KnownHostsFile.DefaultPath;
            KnownHostsFile.Load(path);
            int replaced = KnownHostsFile.Replace(path, server, publicKey);
            // Host-only lines go too (an exact line would win over them anyway): said, not done in silence.
            Console.Error.WriteLine(replaced == 0
                ? $"ossuary: {path} now trusts {publicKey} for {server}"
                : $"ossuary: {path} now trusts {publicKey} for {server}; replaced {replaced} line(s) for it (host-only lines for {server.Host} included); the old file is {path}.old");
            return ExitCodes.Success;
        }));
        return command;
    }
}
