using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Fuzzing;

/// <summary>
/// One fuzz run: a vector-seeded session under test plus the bookkeeping the targets share:
/// replaying the recorded handshake up to a chosen point, delivering bytes in input-chosen
/// segments, sealing packets as the genuine peer would, and the identity checks.
/// </summary>
internal sealed class FuzzHarness : IDisposable
{
    private readonly List<long> _segmentEnds = [];
    private readonly ArrayBufferWriter<byte> _pending = new();
    private readonly List<OssuaryPublicKey> _trustedByApplication = [];

    public FuzzHarness(FuzzVector vector, string side, bool refuseAtOnce, bool drainAfterEachPacket)
    {
        Vector = vector;
        SideName = side;
        Side = vector.Side(side);
        Peer = vector.Side(FuzzVector.Other(side));
        DrainAfterEachPacket = drainAfterEachPacket;
        var clock = new FuzzClock();
        var session = new OssuarySession(Side.Options(clock, refuseAtOnce), new FuzzRandomSource(Side.Draws));
        Probe = new SessionProbe(session, clock);

        // The peer's recorded data is the only plaintext any Data result may carry (plus what
        // the harness itself seals as the peer).
        foreach (FuzzPacket packet in vector.PacketsFrom(FuzzVector.Other(side)))
        {
            if (packet.Type == "EncryptedData" && packet.Plaintext is not null)
            {
                Probe.AddGenuinePlaintext(packet.Plaintext);
            }
        }
    }

    public FuzzVector Vector { get; }

    public string SideName { get; }

    public FuzzSide Side { get; }

    public FuzzSide Peer { get; }

    public SessionProbe Probe { get; }

    public OssuarySession Session => Probe.Session;

    public bool DrainAfterEachPacket { get; }

    /// <summary>
    /// Replays this side's recorded handshake calls (write, receive, trust on first use), at most
    /// <paramref name="maxSteps"/> of them, stopping once established.
    /// </summary>
    public void ReplayHandshake(int maxSteps)
    {
        int steps = 0;
        foreach (FuzzEvent e in Vector.Events)
        {
            if (steps >= maxSteps || Session.IsEstablished)
            {
                return;
            }

            if (e.Side != SideName)
            {
                continue;
            }

            switch (e.Call)
            {
                case "send_handshake":
                    Probe.DrainHandshake();
                    break;
                case "recv_handshake":
                    Deliver(Vector.Packet(e.Packet!.Value).Bytes, []);
                    break;
                case "add_authorized_key":
                    Trust();
                    break;
                default:
                    continue;
            }

            steps++;
        }
    }

    /// <summary>Replays the whole recorded handshake; the session must end up established.</summary>
    public void Establish()
    {
        ReplayHandshake(int.MaxValue);
        if (!Session.IsEstablished)
        {
            throw new FuzzInvariantException($"{Vector.Name}: the {SideName} did not establish on its recorded handshake (state {Session.State}, {Session.LastError})");
        }
    }

    /// <summary>Trusts the key the session is waiting on (or the anonymous key), as an application doing trust on first use.</summary>
    public void Trust()
    {
        OssuaryPublicKey key = Session.RemotePublicKey ?? OssuaryPublicKey.Anonymous;
        _trustedByApplication.Add(key);
        Session.AddAuthorizedKey(key);
        Probe.CheckState("after AddAuthorizedKey");
    }

    public void Disconnect(bool error)
    {
        OssuarySessionState before = Session.State;
        Session.Disconnect(error);
        Probe.CheckState("after Disconnect");
        FuzzCheck.That(Session.State is OssuarySessionState.Closing or OssuarySessionState.Closed, $"Disconnect left a {before} session {Session.State}");
    }

    /// <summary>Queues bytes for the next <see cref="DeliverPending"/>.</summary>
    public void Queue(ReadOnlySpan<byte> bytes) => _pending.Write(bytes);

    /// <summary>Delivers the queued bytes in the given segments; what the session does not consume stays queued.</summary>
    public void DeliverPending(ReadOnlySpan<byte> cuts)
    {
        byte[] pending = _pending.WrittenSpan.ToArray();
        long consumed = Deliver(pending, cuts);
        _pending.Clear();
        _pending.Write(pending.AsSpan((int)consumed));
    }

    /// <summary>
    /// Hands <paramref name="data"/> to Receive as a sequence cut at <paramref name="cuts"/>, the
    /// segments arriving one by one (each Receive sees what has arrived and is not yet consumed),
    /// then calls again until the session needs more data or has closed.
    /// </summary>
    /// <returns>The bytes consumed.</returns>
    public long Deliver(ReadOnlyMemory<byte> data, ReadOnlySpan<byte> cuts)
    {
        ReadOnlySequence<byte> all = SplitSequence.Create(data, cuts, _segmentEnds);
        long consumed = 0;
        foreach (long arrived in _segmentEnds)
        {
            int idle = 0;
            while (true)
            {
                ReadOnlySequence<byte> view = all.Slice(consumed, arrived - consumed);
                OssuaryReceiveResult result = Probe.Receive(view, out long used, out _);
                consumed += used;
                if (used > 0)
                {
                    idle = 0;
                    if (DrainAfterEachPacket)
                    {
                        Probe.DrainHandshake();
                    }

                    continue;
                }

                if (result.Status == OssuaryReceiveStatus.NeedMoreData)
                {
                    break;
                }

                if (result.Status == OssuaryReceiveStatus.Closed)
                {
                    // A closed session consumes nothing more: the rest of the input stays unread.
                    OssuaryReceiveResult again = Probe.Receive(all.Slice(consumed), out long more, out _);
                    FuzzCheck.That(again.Status == OssuaryReceiveStatus.Closed && more == 0, "a closed session accepted more input");
                    return consumed;
                }

                // A timeout reset consumes nothing; the next call must make progress.
                FuzzCheck.That(++idle <= 1, $"Receive keeps returning {result.Status} ({result.Reason}) without consuming");
                if (DrainAfterEachPacket)
                {
                    Probe.DrainHandshake();
                }
            }
        }

        return consumed;
    }

    /// <summary>
    /// Builds a packet as the genuine peer would, under the session key the session under test
    /// derives (the peer's recorded ephemeral secret with the session's latest ephemeral key) and
    /// the peer's recorded nonce advanced <paramref name="nonceOffset"/> times.
    /// </summary>
    public byte[] Seal(bool data, ushort messageId, int nonceOffset, ReadOnlySpan<byte> plaintext)
    {
        bool serverHandshake = !data && Side.Role == OssuaryRole.Client;
        int prefix = data ? 0 : serverHandshake ? 8 + 32 + 12 : 8;
        int bodyLength = prefix + 4 + plaintext.Length + 16;
        byte[] packet = new byte[8 + bodyLength];
        ushort type = data ? OssuaryProtocolLimits.EncryptedData
            : serverHandshake ? OssuaryProtocolLimits.ServerHandshake : OssuaryProtocolLimits.ClientAuthentication;
        BinaryPrimitives.WriteUInt16BigEndian(packet, (ushort)bodyLength);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), messageId);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), type);
        Span<byte> body = packet.AsSpan(8);
        if (!data)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(body, (ushort)bodyLength);
            body[2] = 1;
            if (serverHandshake)
            {
                Peer.EphemeralPublic.CopyTo(body[8..]);
                Peer.SessionNonce.CopyTo(body[40..]);
            }
        }

        Span<byte> blob = body[prefix..];
        BinaryPrimitives.WriteUInt16LittleEndian(blob, (ushort)plaintext.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(blob[2..], 16);

        Span<byte> key = stackalloc byte[32];
        try
        {
            Geralt.X25519.ComputeSharedSecret(key, Peer.EphemeralSecret, Probe.LastEphemeralPublic ?? Side.EphemeralPublic);
        }
        catch (CryptographicException)
        {
            key.Clear();
        }

        Span<byte> nonce = stackalloc byte[12];
        Peer.SessionNonce.CopyTo(nonce);
        for (int i = 0; i < nonceOffset; i++)
        {
            IncrementBigEndian(nonce);
        }

        using (var aead = new ChaCha20Poly1305(key))
        {
            aead.Encrypt(nonce, plaintext, blob.Slice(4, plaintext.Length), blob.Slice(4 + plaintext.Length, 16));
        }

        if (data)
        {
            Probe.AddGenuinePlaintext(plaintext.ToArray());
        }

        return packet;
    }

    /// <summary>
    /// No authentication bypass: an established session's peer identity is one the peer proved
    /// and the session was told to accept. Only the vector's real peer can sign, so any other key
    /// (or an anonymous client at an authenticated server, or an untrusted server) is a bug.
    /// </summary>
    public void CheckPeerIdentity()
    {
        if (!Session.IsEstablished)
        {
            return;
        }

        OssuaryPublicKey remote = Session.RemotePublicKey!;
        if (Side.Role == OssuaryRole.Client)
        {
            FuzzCheck.That(Peer.AuthPublicKey is not null && remote == Peer.AuthPublicKey, "the client established with a server key the server never proved");
            FuzzCheck.That(Side.AuthorizedKeys.Contains(remote) || _trustedByApplication.Contains(remote), "the client established with an untrusted server");
        }
        else if (Side.Role == OssuaryRole.AuthenticatedServer)
        {
            FuzzCheck.That(remote != OssuaryPublicKey.Anonymous, "an authenticated server admitted an anonymous client");
            FuzzCheck.That(Side.AuthorizedKeys.Contains(remote), "an authenticated server admitted a client that is not on its list");
            FuzzCheck.That(remote == Peer.AuthPublicKey, "an authenticated server admitted a key the client never proved");
        }
        else
        {
            FuzzCheck.That(remote == OssuaryPublicKey.Anonymous || remote == Peer.AuthPublicKey, "an unauthenticated server reports a client key nobody proved");
        }
    }

    public FuzzOutcome Outcome() => new(Vector.Name, Side.Role, Session.State, Session.LastError, Session.ResetCount,
        Probe.Receives, Probe.DataResults, Probe.WasEstablished);

    public void Dispose() => Probe.Dispose();

    private static void IncrementBigEndian(Span<byte> nonce)
    {
        for (int i = nonce.Length - 1; i >= 0; i--)
        {
            if (++nonce[i] != 0)
            {
                return;
            }
        }
    }
}
