using Ossuary.Native;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// ossuary.h's failure contract: a call that returns -1 changed nothing, so the caller can go on as
/// if it had not been made. A full heap for real (HeapFullTests) fails the first allocation of a call,
/// the export's own key or identity, before the steps whose order matters; so these drive the object
/// behind a handle (<see cref="NativeConnection"/>, linked in) with <see cref="AllocationFault"/>
/// failing one later step, and read an exception as the export does: -1, nothing written.
/// </summary>
public sealed class NativeConnectionFailureTests
{
    private delegate int Writing(Span<byte> output, out int written);

    /// <summary>
    /// ossuary_set_secret_key() stored the new key before it made the session around it: when that
    /// failed it returned -1, but the connection held the refused key and had dropped its hold on the
    /// one in force, which the old session went on signing with and which no later call, nor the
    /// connection's destruction, then wiped: its seed was left to the finalizer.
    /// </summary>
    [Fact]
    public void ASecretKeyWhoseSessionCannotBeMadeIsWipedAndTheKeyInForceStays()
    {
        OssuaryIdentity first = OssuaryIdentity.Generate();
        OssuaryIdentity refused = OssuaryIdentity.Generate();
        OssuaryIdentity third = OssuaryIdentity.Generate();
        OssuaryIdentity serverIdentity = OssuaryIdentity.Generate();
        OssuaryPublicKey serverKey = serverIdentity.PublicKey;
        using var server = new NativeConnection(OssuaryRole.UnauthenticatedServer, serverIdentity);
        using var client = new NativeConnection(OssuaryRole.Client, first);
        client.AddAuthorizedKey(serverKey);

        AllocationFault.Arm(AllocationFault.Session);
        Assert.Equal(ReturnCode.Other, Export(() => client.TrySetIdentity(refused) ? 0 : ReturnCode.Other));
        AllocationFault.Disarm();

        Assert.True(refused.IsDisposed, "the key of the failed call was kept, its seed not wiped");
        Assert.False(first.IsDisposed, "the key in force was wiped by a call that failed");

        // The key in force is the one the next successful call replaces, and so wipes.
        Assert.True(client.TrySetIdentity(third));
        Assert.True(first.IsDisposed, "the key replaced after the failure was not wiped");
        Assert.Equal(1, Handshake(client, server));
        Assert.Equal(third.PublicKey, server.RemotePublicKey);
    }

    /// <summary>
    /// ossuary_add_authorized_key() put the key on the connection's list before it gave it to the
    /// session: when the session had no room for it, the call returned -1 but the key stayed on the
    /// list, and the session that ossuary_set_secret_key() makes from that list trusted it.
    /// </summary>
    [Fact]
    public void AKeyThatFailedToBeAddedIsNotTrustedNowNorByALaterSession()
    {
        AssertAllOrNothing((client, key) =>
        {
            client.AddAuthorizedKey(key);
            return 0;
        }, succeeded: 0);
    }

    /// <summary>
    /// ossuary_add_authorized_keys() added its keys one at a time: a failure at the second returned -1
    /// with the first already trusted, and the caller, told only "-1", could not tell which keys were.
    /// A batch is now all or nothing.
    /// </summary>
    [Fact]
    public void ABatchOfKeysThatFailsPartWayTrustsNoneOfThem()
    {
        OssuaryPublicKey unrelated = OssuaryIdentity.Generate().PublicKey;
        AssertAllOrNothing((client, key) =>
        {
            client.AddAuthorizedKeys([key, unrelated]);
            return 2;
        }, succeeded: 2);
    }

    /// <summary>
    /// ossuary_send_handshake() copied what an earlier call had kept back into out_buf, then failed to
    /// write the next packet and returned -1, which reports nothing written: the bytes copied were
    /// gone from the library and never sent, and the peer's handshake stalled on a packet cut short.
    /// Now the call reports the bytes it copied, and the next call writes the packet that failed.
    /// </summary>
    [Fact]
    public void HandshakeBytesHandedOutBeforeTheNextPacketFailsAreReportedNotLost()
    {
        using var server = new NativeConnection(OssuaryRole.UnauthenticatedServer, null);
        using var client = new NativeConnection(OssuaryRole.Client, null);
        var sent = new List<byte>();
        byte[] buffer = new byte[4096];
        Assert.Equal(ReturnCode.WouldBlock, client.SendHandshake(buffer.AsSpan(0, 10), out int written));
        sent.AddRange(buffer.AsSpan(0, written));

        // A Disconnect is now owed behind the rest of the ClientHandshake, kept back in the queue.
        client.Disconnect(error: false);
        AllocationFault.Arm(AllocationFault.HandshakePacket);
        (int result, written) = Export(client.SendHandshake, buffer);
        AllocationFault.Disarm();
        Assert.True(result == written && written > 0, $"the call returned {result} with {written} bytes reported written");
        sent.AddRange(buffer.AsSpan(0, written));

        (result, written) = Export(client.SendHandshake, buffer);
        Assert.True(result == written && written > 0, $"the packet that failed was not written again: {result}, {written} bytes");
        sent.AddRange(buffer.AsSpan(0, written));

        // The server takes a whole ClientHandshake, answers it, then takes the Disconnect, which ends it.
        byte[] stream = [.. sent];
        int consumed = server.ReceiveHandshake(stream, out int taken);
        Assert.True(consumed > 0 && consumed == taken, $"the ClientHandshake did not come through whole: {consumed}");
        Assert.True(server.SendHandshake(buffer, out _) > 0, "the server did not answer the ClientHandshake");
        Assert.Equal(ReturnCode.Other, server.ReceiveHandshake(stream.AsSpan(taken), out int rest));
        Assert.Equal(stream.Length, taken + rest);
    }

    /// <summary>
    /// The same call when what failed was not for want of memory (a bug of ours): it returned the
    /// bytes it had handed out, rightly, but swallowed the exception, so nothing anywhere said what
    /// had gone wrong. The failure is now withheld for the export, which says it on stderr
    /// (InternalError, InternalErrorTests), and handed over once.
    /// </summary>
    [Fact]
    public void AFailureWithheldToReportHandshakeBytesIsHandedToTheExport()
    {
        using var client = new NativeConnection(OssuaryRole.Client, null);
        byte[] buffer = new byte[4096];
        Assert.Equal(ReturnCode.WouldBlock, client.SendHandshake(buffer.AsSpan(0, 10), out _));
        Assert.Null(client.TakeWithheldFailure());

        client.Disconnect(error: false);
        var bug = new InvalidOperationException("Injected: not for want of memory.");
        AllocationFault.Arm(AllocationFault.HandshakePacket, instead: bug);
        int result = client.SendHandshake(buffer, out int written);
        AllocationFault.Disarm();

        Assert.True(result == written && written > 0, $"the call returned {result} with {written} bytes reported written");
        Assert.Same(bug, client.TakeWithheldFailure());
        Assert.Null(client.TakeWithheldFailure());
    }

    /// <summary>
    /// Makes the trust step of <paramref name="add"/> fail at every point it passes in turn: after a
    /// failure the server's key must be trusted neither by the client's session nor by a session made
    /// afterwards; once the call gets through, by both.
    /// </summary>
    private static void AssertAllOrNothing(Func<NativeConnection, OssuaryPublicKey, int> add, int succeeded)
    {
        for (int passes = 0; passes < 10; passes++)
        {
            foreach (bool laterSession in new[] { false, true })
            {
                OssuaryIdentity serverIdentity = OssuaryIdentity.Generate();
                OssuaryPublicKey serverKey = serverIdentity.PublicKey;
                using var server = new NativeConnection(OssuaryRole.UnauthenticatedServer, serverIdentity);
                using var client = new NativeConnection(OssuaryRole.Client, null);

                AllocationFault.Arm(AllocationFault.Trust, passes);
                int result = Export(() => add(client, serverKey));
                AllocationFault.Disarm();
                if (laterSession)
                {
                    Assert.True(client.TrySetIdentity(OssuaryIdentity.Generate()));
                }

                int done = Handshake(client, server);
                if (result == succeeded)
                {
                    Assert.True(done == 1, $"the call succeeded, but the server's key is not trusted: {done}");
                    if (laterSession)
                    {
                        return;
                    }

                    continue;
                }

                Assert.Equal(ReturnCode.Other, result);
                string session = laterSession ? "a session made after the call" : "the session in force";
                Assert.True(done == ReturnCode.UntrustedServer, $"the call failed after {passes} passes, but {session} trusts the server's key: {done}");
            }
        }

        Assert.Fail("the call never got through");
    }

    /// <summary>Both handshake loops until the client is established (and the server too) or stops: its last <see cref="NativeConnection.HandshakeDone"/>.</summary>
    private static int Handshake(NativeConnection client, NativeConnection server)
    {
        var toServer = new List<byte>();
        var toClient = new List<byte>();
        byte[] buffer = new byte[4096];
        for (int round = 0; round < 50; round++)
        {
            int clientDone = client.HandshakeDone();
            int serverDone = server.HandshakeDone();
            if ((clientDone == 1 && serverDone == 1) || clientDone < 0)
            {
                return clientDone;
            }

            Exchange(client, clientDone, toServer, toClient, buffer);
            Exchange(server, serverDone, toClient, toServer, buffer);
        }

        throw new InvalidOperationException("no handshake in 50 rounds");
    }

    private static void Exchange(NativeConnection end, int done, List<byte> output, List<byte> input, byte[] buffer)
    {
        if (done != 0)
        {
            return;
        }

        end.SendHandshake(buffer, out int written);
        output.AddRange(buffer.AsSpan(0, written));
        if (input.Count > 0)
        {
            end.ReceiveHandshake(input.ToArray(), out int consumed);
            input.RemoveRange(0, consumed);
        }
    }

    /// <summary>What the export makes of a call: an exception is -1.</summary>
    private static int Export(Func<int> call)
    {
        try
        {
            return call();
        }
        catch (OutOfMemoryException)
        {
            return ReturnCode.Other;
        }
    }

    /// <summary>What the export makes of a call that writes: an exception is -1 with nothing written.</summary>
    private static (int Result, int Written) Export(Writing call, Span<byte> output)
    {
        try
        {
            int result = call(output, out int written);
            return (result, written);
        }
        catch (OutOfMemoryException)
        {
            return (ReturnCode.Other, 0);
        }
    }
}
