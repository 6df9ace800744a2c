using Ossuary.Pipelines;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Demo;

/// <summary>A client that trusts nobody meets an unauthenticated server and decides to trust its key.</summary>
internal static class TrustOnFirstUsePart
{
    public static async Task RunAsync(CancellationToken ct)
    {
        Console.WriteLine("== Part 2: trust on first use, unauthenticated server, anonymous client ==");
        using var serverIdentity = OssuaryIdentity.Generate();
        Console.WriteLine($"server public key: {serverIdentity.PublicKey}");
        var serverOptions = new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer, Identity = serverIdentity };
        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client }; // no identity, no trusted keys

        OssuaryPublicKey? trusted = null;
        bool TrustOnFirstUse(OssuaryPublicKey key)
        {
            // A real client would ask its user, or remember the key (a known-hosts file) for next time.
            Console.WriteLine($"client: Receive returned UntrustedServer, server key {key}");
            Console.WriteLine("client: trusting it on first use (AddAuthorizedKey) and carrying on");
            trusted = key;
            return true;
        }

        using LoopbackPair pair = await LoopbackPair.ConnectAsync(clientOptions, serverOptions, ct);
        await pair.RunAsync(pair.Client.HandshakeAsync(TrustOnFirstUse, ct), pair.Server.HandshakeAsync(null, ct));
        Check.That(trusted == serverIdentity.PublicKey, "the client was not asked to trust the server's key");
        OssuaryPublicKey clientKey = pair.Server.Session.RemotePublicKey!;
        Console.WriteLine($"server: client key {clientKey} (anonymous: {clientKey.IsAnonymous})");

        await pair.RunAsync(
            Conversation.TalkAsync(pair.Client, ["hello from a client you have never met"], ct),
            Conversation.ServeAsync(pair.Server, _ => "welcome: the channel is encrypted even though you are anonymous", ct));
    }
}
