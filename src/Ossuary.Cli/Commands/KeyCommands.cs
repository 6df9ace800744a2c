using System.CommandLine;
using System.Text;
using Ossuary.Pipelines;

namespace Ossuary.Cli.Commands;

/// <summary><c>ossuary keygen</c> and <c>ossuary pubkey</c>.</summary>
internal static class KeyCommands
{
    public static Command Keygen()
    {
        var output = new Option<string>("--output", "-o")
        {
            Description = "Where to write the secret key (mode 0600); '-' writes it to stdout and the public key to stderr.",
            DefaultValueFactory = _ => "ossuary.key",
        };
        var force = new Option<bool>("--force") { Description = "Replace an existing file." };
        var command = new Command("keygen", "Make a new secret key file and print its public key.") { output, force };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            using OssuaryIdentity identity = OssuaryIdentity.Generate();
            string path = parse.GetValue(output)!;
            KeyFiles.WriteSecret(path, identity, parse.GetValue(force));
            if (StdPaths.IsStdio(path))
            {
                // stdout holds the secret alone, so that `ossuary keygen -o - | ossuary pubkey -` works.
                Console.Error.WriteLine($"ossuary: public key {identity.PublicKey}");
                return ExitCodes.Success;
            }

            try
            {
                StdPaths.WriteStdout(Encoding.ASCII.GetBytes($"{identity.PublicKey}\n"), "the public key");
            }
            catch (CliException ex)
            {
                // The key file is made: a run again would only find it there ("already exists").
                throw new CliException($"{ex.Message}; wrote the secret key to '{path}' all the same (ossuary pubkey {path} prints its public key)", ex.ExitCode);
            }

            Console.Error.WriteLine($"ossuary: wrote secret key to {path}; share the public key above");
            return ExitCodes.Success;
        }));
        return command;
    }

    public static Command Pubkey()
    {
        var file = new Argument<string>("FILE") { Description = "A secret key file; '-' reads it from stdin." };
        var command = new Command("pubkey", "Print the public key of a secret key file.") { file };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            using OssuaryIdentity identity = KeyFiles.ReadSecret(parse.GetValue(file)!, allowStdin: true);
            StdPaths.WriteStdout(Encoding.ASCII.GetBytes($"{identity.PublicKey}\n"), "the public key");
            return ExitCodes.Success;
        }));
        return command;
    }
}
