using System.CommandLine;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli;

/// <summary>The server's identity and allow-list options, shared by <c>listen</c> and <c>receive</c>.</summary>
internal sealed class ServerTrust
{
    public Option<string?> Key { get; } = new("--key") { Description = "Secret key file of this server (omit for a temporary identity)." };

    public Option<string?> AuthorizedKeys { get; } = new("--authorized-keys") { Description = "File of client public keys to admit; admitting only those makes the server authenticated." };

    public Option<string[]> Allow { get; } = new("--allow") { Description = "Admit this client public key (64 hex characters); repeatable." };

    public void AddTo(Command command)
    {
        command.Add(Key);
        command.Add(AuthorizedKeys);
        command.Add(Allow);
    }

    /// <summary>Builds server options; without an allow-list the server is unauthenticated. The caller disposes the identity.</summary>
    public OssuaryServerOptions CreateOptions(ParseResult parse, out OssuaryIdentity identity)
    {
        string? keyPath = parse.GetValue(Key);
        if (keyPath is null)
        {
            identity = OssuaryIdentity.Generate();
            Console.Error.WriteLine($"ossuary: no --key given; using a temporary identity {identity.PublicKey}");
        }
        else
        {
            identity = KeyFiles.ReadSecret(keyPath);
        }

        var options = new OssuaryServerOptions { Identity = identity, Mode = OssuaryServerMode.Unauthenticated };
        foreach (string hex in parse.GetValue(Allow) ?? [])
        {
            options.AuthorizedClientKeys.Add(KeyFiles.ParsePublic(hex, "--allow"));
        }

        if (parse.GetValue(AuthorizedKeys) is { } path)
        {
            try
            {
                foreach (OssuaryPublicKey key in OssuaryAuthorizedKeys.Load(path))
                {
                    options.AuthorizedClientKeys.Add(key);
                }
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                throw new CliException($"authorized-keys file '{path}' does not exist", ExitCodes.BadInput);
            }
            catch (FormatException ex)
            {
                throw new CliException($"authorized-keys file is malformed: {ex.Message}", ExitCodes.BadInput);
            }

            if (options.AuthorizedClientKeys.Count == 0)
            {
                throw new CliException($"authorized-keys file '{path}' holds no keys: nobody could connect", ExitCodes.BadInput);
            }
        }

        if (options.AuthorizedClientKeys.Count > 0)
        {
            options.Mode = OssuaryServerMode.Authenticated;
        }

        return options;
    }
}
