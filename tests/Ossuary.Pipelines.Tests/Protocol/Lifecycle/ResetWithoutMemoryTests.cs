using Ossuary.Pipelines.Crypto;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// A reset makes a new generation's keys, which can fail for want of memory (the C library's full
/// heap). The call that failed then throws, and the C library returns -1 having consumed nothing:
/// the session must be as it was, so that the caller can go on, and the same bytes handed in again
/// are read as the first time.
/// </summary>
public class ResetWithoutMemoryTests
{
    /// <summary>
    /// BeginReset forgot the session key before it made the new generation's material: when that
    /// failed, the session still said Established but had no key. Every later WriteData threw
    /// ("not established") and the same record handed in again threw too (its key was gone), so
    /// ossuary_handshake_done() said 1 while every data call returned -1, for ever; the reset had
    /// been counted as well, so a retry that got through counted it twice.
    /// </summary>
    [Fact]
    public void AResetThatCannotMakeItsKeysLeavesTheEstablishedSessionAsItWas()
    {
        var random = new RefusingRandomSource();
        using OssuaryIdentity serverIdentity = OssuaryIdentity.Generate();
        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client };
        clientOptions.AuthorizedKeys.Add(serverIdentity.PublicKey);
        using var client = new OssuarySession(clientOptions);
        using var server = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer, Identity = serverIdentity }, random);
        new SessionPump(client, server).Run();
        Assert.True(client.IsEstablished && server.IsEstablished, "the handshake did not complete");

        // A record whose tag does not check: the server resets on it, drawing fresh keys.
        byte[] forged = SessionPair.DataPacket(client, "forged"u8);
        forged[^1] ^= 1;

        random.RefuseNext = true;
        Assert.Throws<OutOfMemoryException>(() => SessionPair.Receive(server, forged));

        Assert.Equal((OssuarySessionState.Established, 0, OssuaryErrorReason.None), (server.State, server.ResetCount, server.LastError));
        byte[] reply = SessionPair.DataPacket(server, "still up"u8);
        OssuaryReceiveResult received = SessionPair.Receive(client, reply, out byte[] plaintext);
        Assert.Equal((OssuaryReceiveStatus.Data, "still up"), (received.Status, System.Text.Encoding.ASCII.GetString(plaintext)));

        // The same record again, with memory now: one reset, for the reason the first call met.
        OssuaryReceiveResult again = SessionPair.Receive(server, forged);
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.DecryptionFailed), (again.Status, again.Reason));
        Assert.Equal((OssuarySessionState.Resetting, 1), (server.State, server.ResetCount));
    }

    /// <summary>Real randomness, except that the draw after <see cref="RefuseNext"/> is set throws as a full heap would.</summary>
    private sealed class RefusingRandomSource : RandomSource
    {
        public bool RefuseNext { get; set; }

        public override void Fill(Span<byte> destination)
        {
            if (RefuseNext)
            {
                RefuseNext = false;
#pragma warning disable CA2201 // Reserved for the runtime: thrown here to stand in for the runtime's own.
                throw new OutOfMemoryException("Injected at a random draw.");
#pragma warning restore CA2201
            }

            Secure.Fill(destination);
        }
    }
}
