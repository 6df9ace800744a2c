using System.CommandLine;
using Ossuary.Cli.Net;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli;

/// <summary>The client's identity and trust options, shared by <c>connect</c> and <c>send</c>.</summary>
internal sealed class ClientTrust
{
    public Option<string?> Key { get; } = new("--key") { Description = "Secret key file of this client (omit to connect anonymously); '-' reads stdin for send FILE." };

    public Option<string[]> Trust { get; } = new("--trust") { Description = "Trust this server public key (64 hex characters); repeatable." };

    public Option<string?> KnownHosts { get; } = new("--known-hosts") { Description = "Known-hosts file (default ~/.ossuary/known_hosts)." };

    public Option<bool> Tofu { get; } = new("--tofu") { Description = "Trust an unknown server on first use and record its key in the known-hosts file." };

    public void AddTo(Command command)
    {
        command.Add(Key);
        command.Add(Trust);
        command.Add(KnownHosts);
        command.Add(Tofu);
    }

    /// <summary>Builds client options; the caller disposes the identity. <paramref name="stdinFree"/>: stdin carries no data, so <c>--key -</c> may read it.</summary>
    public OssuaryClientOptions CreateOptions(ParseResult parse, HostPort server, bool stdinFree, out OssuaryIdentity? identity)
    {
        string? keyPath = parse.GetValue(Key);
        identity = keyPath is null ? null : KeyFiles.ReadSecret(keyPath, allowStdin: stdinFree);
        var options = new OssuaryClientOptions { Identity = identity };
        foreach (string hex in parse.GetValue(Trust) ?? [])
        {
            options.TrustedServerKeys.Add(KeyFiles.ParsePublic(hex, "--trust"));
        }

        string knownHostsPath = parse.GetValue(KnownHosts) ?? KnownHostsFile.DefaultPath;
        if (StdPaths.IsStdio(knownHostsPath))
        {
            throw new CliException("--known-hosts cannot be '-': the file is read and, with --tofu, written; name a file", ExitCodes.BadInput);
        }

        bool tofu = parse.GetValue(Tofu);

        // With --trust, the file is read only if the server's key is not among those trusted, so a
        // damaged known-hosts file does not stand in the way of an explicitly trusted server;
        // without, it is all we have, so a damaged one fails before connecting.
        var knownHosts = new Lazy<OssuaryKnownHosts>(() => KnownHostsFile.Load(knownHostsPath));
        if (options.TrustedServerKeys.Count == 0)
        {
            _ = knownHosts.Value;
        }

        options.TrustServer = (key, _) => ValueTask.FromResult(Decide(knownHosts.Value, server, key, tofu));
        return options;
    }

    private static CliException Changed(OssuaryKnownHosts knownHosts, HostPort server, OssuaryPublicKey key)
    {
        string path = knownHosts.Path!;
        string where = string.Join(", ", KnownHostsFile.LinesFor(path, server).Select(line => $"{path}:{line}"));
        return new CliException(
            $"REMOTE HOST IDENTIFICATION HAS CHANGED for {server}! It presented key {key}, but {(where.Length > 0 ? where : path)} holds " +
            $"{knownHosts.Find(server.Host, server.Port)}. Someone may be impersonating the server. Refusing to connect; " +
            $"if the key really changed, remove the old entry with: ossuary known-hosts remove {server} --known-hosts {path}", ExitCodes.Untrusted);
    }

    private static bool Decide(OssuaryKnownHosts knownHosts, HostPort server, OssuaryPublicKey key, bool tofu)
    {
        switch (knownHosts.Check(server.Host, server.Port, key))
        {
            case KnownHostStatus.Trusted:
                return true;
            case KnownHostStatus.Changed:
                throw Changed(knownHosts, server, key);
            default:
                if (!tofu)
                {
                    throw new CliException(
                        $"the server {server} presented key {key}, which is not trusted. To trust it, run again with " +
                        $"--trust {key}, or with --tofu to record it in {knownHosts.Path}.", ExitCodes.Untrusted);
                }

                try
                {
                    KnownHostsFile.EnsureDirectory(knownHosts.Path!);
                    knownHosts.Add(server.Host, server.Port, key, $"added by ossuary on {DateTime.UtcNow:yyyy-MM-dd}");
                }
                catch (InvalidOperationException)
                {
                    // Another process recorded a different key for this server since we read the file.
                    throw Changed(knownHosts, server, key);
                }
                catch (FormatException ex)
                {
                    // Re-read as it is added to: another writer left a line that does not parse.
                    throw new CliException($"known-hosts file is malformed: {ex.Message}", ExitCodes.BadInput);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Trust on first use that is not recorded would be first use again next time: not connecting.
                    throw new CliException(
                        $"cannot record {server}'s key {key} in the known-hosts file '{knownHosts.Path}': {ex.Message}; not connecting",
                        SystemFailure.ExitCode(ex));
                }

                Console.Error.WriteLine($"ossuary: trusting {server} on first use; recorded key {key} in {knownHosts.Path}");
                return true;
        }
    }
}
