using System.Diagnostics;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Demo;

/// <summary>Both sides have identities, and each trusts only the other's key.</summary>
internal static class AuthenticatedPart
{
    public static async Task RunAsync(CancellationToken ct)
    {
        Console.WriteLine("== Part 1: authenticated server, client with its own identity ==");
        using var serverIdentity = OssuaryIdentity.Generate();
        using var clientIdentity = OssuaryIdentity.Generate();
        Console.WriteLine($"server public key: {serverIdentity.PublicKey}");
        Console.WriteLine($"client public key: {clientIdentity.PublicKey}");

        var serverOptions = new OssuarySessionOptions { Role = OssuaryRole.AuthenticatedServer, Identity = serverIdentity };
        serverOptions.AuthorizedKeys.Add(clientIdentity.PublicKey);
        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = clientIdentity };
        clientOptions.AuthorizedKeys.Add(serverIdentity.PublicKey);

        using LoopbackPair pair = await LoopbackPair.ConnectAsync(clientOptions, serverOptions, ct);
        var stopwatch = Stopwatch.StartNew();
        await pair.RunAsync(pair.Client.HandshakeAsync(null, ct), pair.Server.HandshakeAsync(null, ct));
        stopwatch.Stop();
        Console.WriteLine($"handshake: {pair.Client.HandshakePacketsSent + pair.Server.HandshakePacketsSent} packets, "
            + $"{stopwatch.Elapsed.TotalMilliseconds:F1} ms (the process's first handshake, so mostly JIT compilation)");
        Check.That(pair.Server.Session.RemotePublicKey == clientIdentity.PublicKey, "the server did not see the client's key");
        Check.That(pair.Client.Session.RemotePublicKey == serverIdentity.PublicKey, "the client did not see the server's key");

        await pair.RunAsync(
            Conversation.TalkAsync(pair.Client, ["hello, server", "how are you?", "goodbye"], ct),
            Conversation.ServeAsync(pair.Server, line => $"you said \"{line}\" ({line.Length} characters)", ct));
        Check.That(pair.Server.Session.LastError == OssuaryErrorReason.ConnectionClosed, "the server did not see a clean close");
    }
}
