using System.CommandLine;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli;

/// <summary>The server's identity and allow-list options, shared by <c>listen</c> and <c>receive</c>.</summary>
internal sealed class ServerTrust
{
    public Option<string?> Key { get; } = new("--key") { Description = "Secret key file of this server (omit for a temporary identity); '-' reads stdin where it carries no data (receive, listen --echo)." };

    public Option<string?> AuthorizedKeys { get; } = new("--authorized-keys") { Description = "File of client public keys to admit; admitting only those makes the server authenticated. '-' reads stdin where it carries no data." };

    public Option<string[]> Allow { get; } = new("--allow") { Description = "Admit this client public key (64 hex characters); repeatable." };

    public void AddTo(Command command)
    {
        command.Add(Key);
        command.Add(AuthorizedKeys);
        command.Add(Allow);
    }

    /// <summary>
    /// Reads the identity and the allow-list; without an allow-list the server is unauthenticated.
    /// The caller disposes the identity. <paramref name="stdinFree"/>: stdin carries no data, so one
    /// of <c>--key -</c> and <c>--authorized-keys -</c> may read it.
    /// </summary>
    public ServerSetup Create(ParseResult parse, bool stdinFree)
    {
        if (parse.GetValue(Key) == StdPaths.Dash && parse.GetValue(AuthorizedKeys) == StdPaths.Dash)
        {
            throw new CliException("--key and --authorized-keys cannot both be '-': there is one stdin", ExitCodes.BadInput);
        }

        string? keyPath = parse.GetValue(Key);
        var keys = new List<OssuaryPublicKey>();
        foreach (string hex in parse.GetValue(Allow) ?? [])
        {
            keys.Add(KeyFiles.ParsePublic(hex, "--allow"));
        }

        if (parse.GetValue(AuthorizedKeys) is { } path)
        {
            bool fromStdin = StdPaths.IsStdio(path);
            if (fromStdin && !stdinFree)
            {
                throw new CliException("--authorized-keys cannot be '-' here: stdin carries the connection's data", ExitCodes.BadInput);
            }

            if (!fromStdin)
            {
                StdPaths.RequireFile(path, "authorized-keys file");
            }

            try
            {
                // Stdin read as a file is, up to its bound: the lines were bounded, not their number, and an endless stream of them filled the memory.
                keys.AddRange(fromStdin
                    ? OssuaryAuthorizedKeys.Parse(new StreamReader(TrustFileSize.Capped(StdPaths.OpenStdin("the authorized keys"), "stdin", "authorized-keys")), "stdin")
                    : OssuaryAuthorizedKeys.Load(path));
            }
            catch (FormatException ex)
            {
                throw new CliException($"authorized-keys file is malformed: {ex.Message}", ExitCodes.BadInput);
            }

            if (keys.Count == 0)
            {
                throw new CliException($"authorized-keys file '{path}' holds no keys: nobody could connect", ExitCodes.BadInput);
            }
        }

        OssuaryIdentity identity;
        if (keyPath is null)
        {
            identity = OssuaryIdentity.Generate();
            Console.Error.WriteLine(
                $"ossuary: no --key given; using a temporary identity {identity.PublicKey}. Clients that recorded this server's key " +
                "before (--tofu) will see a changed key and refuse to connect; for a lasting identity: ossuary keygen -o server.key, then --key server.key");
        }
        else
        {
            identity = KeyFiles.ReadSecret(keyPath, allowStdin: stdinFree);
        }

        return new ServerSetup(identity, keys);
    }
}

/// <summary>A server's identity and allow-list, and fresh options for each connection so that a refused key can be told.</summary>
internal sealed class ServerSetup(OssuaryIdentity identity, IReadOnlyList<OssuaryPublicKey> allowed) : IDisposable
{
    public OssuaryIdentity Identity => identity;

    public bool Authenticated => allowed.Count > 0;

    public int AllowedCount => allowed.Count;

    /// <summary>Options for one connection; <paramref name="refused"/> receives the key of a client the allow-list turned away.</summary>
    public OssuaryServerOptions ForConnection(StrongBoxKey refused)
    {
        var options = new OssuaryServerOptions
        {
            Identity = identity,
            Mode = Authenticated ? OssuaryServerMode.Authenticated : OssuaryServerMode.Unauthenticated,
        };
        if (Authenticated)
        {
            // The allow-list is this callback's, so that the refused key can be logged: an admin needs it for --allow.
            var keys = allowed.ToHashSet();
            options.AuthorizeClient = (key, _, _) =>
            {
                bool admitted = keys.Contains(key);
                if (!admitted)
                {
                    refused.Key = key;
                }

                return ValueTask.FromResult(admitted);
            };
        }

        return options;
    }

    public void Dispose() => identity.Dispose();
}

/// <summary>The key of a client the allow-list refused, if it presented one.</summary>
internal sealed class StrongBoxKey
{
    public OssuaryPublicKey? Key { get; set; }
}
