using System.Buffers;

namespace Ossuary.Pipelines.Protocol;

public sealed partial class OssuarySession
{
    /// <summary>
    /// Consumes at most one packet from the front of <paramref name="input"/>. A packet may
    /// span segments; the positions are the ones a <c>PipeReader.AdvanceTo</c> call needs.
    /// </summary>
    /// <param name="input">Bytes received from the peer, in order.</param>
    /// <param name="plaintext">Where a data packet's plaintext goes: the caller's buffer, decrypted into directly.</param>
    /// <param name="consumed">The end of the packet consumed, or the start of <paramref name="input"/> if none was.</param>
    /// <param name="examined">How far the session looked: the end of the input when it needs more.</param>
    /// <exception cref="Exception">
    /// Whatever <paramref name="plaintext"/> throws from <c>GetSpan</c> or <c>Advance</c>: the packet is then
    /// not consumed and the session is as it was before the call, so the same input can be handed in again.
    /// </exception>
    /// <remarks>
    /// A header announcing more than <see cref="MaxPacketLength"/> bytes closes the session from
    /// the 8 header bytes alone, so a hostile length never makes the caller buffer a body.
    /// </remarks>
    public OssuaryReceiveResult Receive(in ReadOnlySequence<byte> input, IBufferWriter<byte> plaintext, out SequencePosition consumed, out SequencePosition examined)
    {
        ArgumentNullException.ThrowIfNull(plaintext);
        lock (_gate)
        {
            return ReceiveOne(input, plaintext, out consumed, out examined);
        }
    }

    private OssuaryReceiveResult ReceiveOne(in ReadOnlySequence<byte> input, IBufferWriter<byte> plaintext, out SequencePosition consumed, out SequencePosition examined)
    {
        consumed = input.Start;
        examined = input.Start;
        if (_step is Step.SendFarewell or Step.Closed)
        {
            return OssuaryReceiveResult.Closed(_closedResult);
        }

        if (!PacketHeader.TryRead(input, out PacketHeader header))
        {
            return NeedMoreData(input, out examined);
        }

        if (header.BodyLength > PacketHeader.MaxBodyLength)
        {
            // Permanent, as in the original: the stream can no longer be framed.
            Close(OssuaryErrorReason.OversizedPacket, Farewell.ErrorDisconnect);
            return OssuaryReceiveResult.Closed(OssuaryErrorReason.OversizedPacket);
        }

        if (input.Length < header.PacketLength)
        {
            return NeedMoreData(input, out examined);
        }

        ReadOnlySequence<byte> body = input.Slice(PacketHeader.Size, header.BodyLength);
        consumed = examined = body.End;
        return header.Type switch
        {
            PacketType.Reset => OnReset(),
            PacketType.Disconnect => OnDisconnect(body),
            _ => OnSequencedPacket(header, body, plaintext),
        };
    }

    /// <summary>
    /// No whole packet yet: only now can the wait have timed out. A packet that has arrived is
    /// processed even if it came late, since it is no longer being waited for (the original
    /// checks first, and resets a peer whose answer is already in its buffer).
    /// </summary>
    private OssuaryReceiveResult NeedMoreData(in ReadOnlySequence<byte> input, out SequencePosition examined)
    {
        if (CheckTimeout())
        {
            // Nothing examined: the caller must not wait for more input before writing the Reset.
            examined = input.Start;

            // A timeout that was the connection's fifth reset closed the session: say so, since
            // Reset promises a new handshake that will never come.
            return _step == Step.SendFarewell
                ? OssuaryReceiveResult.Closed(_lastError)
                : OssuaryReceiveResult.Reset(OssuaryErrorReason.HandshakeTimeout);
        }

        examined = input.End;
        return OssuaryReceiveResult.NeedMoreData;
    }

    /// <summary>Reset and Disconnect carry no authentication; the original ignores their msg_id and len.</summary>
    private OssuaryReceiveResult OnReset()
    {
        if (_step == Step.ResetWait)
        {
            // The peer acknowledged our reset: start over.
            _remoteMessageId = 0;
            EnterInitialStep();
            return OssuaryReceiveResult.Handshake;
        }

        // Any other Reset is one we did not ask for, also right after we answered one: a peer that
        // started it waits in its ResetWait for our answer (the original for ever). Conforming peers
        // never answer an answer (the side that started a reset takes the first Reset back as it);
        // only a Reset injected on the wire makes both sides answer each other, as the original's
        // do, until the fifth reset ends the connection.
        return BeginReset(OssuaryErrorReason.ConnectionReset, initiator: false);
    }

    /// <summary>
    /// Whether a Disconnect's body reports a failure. Body: len (ignored) · error flag · reserved. A body shorter
    /// than its 4 bytes is malformed and counts as a failure, even when it holds a zero where the flag goes: a
    /// packet cut short must never be reported as a clean close (the original cannot parse one, and never reports that).
    /// </summary>
    internal static bool IsErrorDisconnect(in ReadOnlySequence<byte> body) =>
        body.Length < ControlBodySize || body.Slice(2, 1).FirstSpan[0] != 0;

    private OssuaryReceiveResult OnDisconnect(in ReadOnlySequence<byte> body)
    {
        bool error = IsErrorDisconnect(body);
        OssuaryErrorReason reason = error ? OssuaryErrorReason.ConnectionFailed : OssuaryErrorReason.ConnectionClosed;

        // The original answers a Disconnect with a Disconnect during the handshake. Once
        // established its receive path resets twice (counting both), and the second reset sends
        // a Reset, or a Disconnect (error) if that was its fifth; vector d records the Reset.
        // During the handshake its receive path resets once, counting it: when that is the fifth,
        // the permanent error becomes "connection failed" and the answer carries the error flag.
        Farewell answer = error ? Farewell.ErrorDisconnect : Farewell.CleanDisconnect;
        if (_step == Step.Established)
        {
            _resetCount += 2;
            answer = _resetCount >= MaxResets ? Farewell.ErrorDisconnect : Farewell.Reset;
        }
        else if (++_resetCount >= MaxResets)
        {
            answer = Farewell.ErrorDisconnect;
        }

        Close(reason, answer);
        return OssuaryReceiveResult.Closed(reason);
    }

    private OssuaryReceiveResult OnSequencedPacket(PacketHeader header, in ReadOnlySequence<byte> body, IBufferWriter<byte> plaintext)
    {
        switch (_step)
        {
            case Step.ResetWait:
            case Step.SendResetThenWait:
            case Step.ClientAwaitingTrust:
                // Stale packets from the generation being thrown away, or a server that is
                // waiting for our decision: the original drops them too.
                return OssuaryReceiveResult.Handshake;
        }

        if (header.MessageId != _remoteMessageId)
        {
            return BeginReset(OssuaryErrorReason.MessageIdMismatch, initiator: true);
        }

        if (_step == Step.Established && header.Type == PacketType.EncryptedData)
        {
            // The id advances once the plaintext is in the caller's writer, which may throw.
            return OpenRecord(body, plaintext);
        }

        // The id, and the nonce a handshake blob advances, stay where they were if reading the packet
        // throws (no memory for the peer's key or the cipher: the C library's full heap), so that the
        // same packet handed in again is read as the first time. Left advanced, the retry was a
        // message id gap, and the handshake reset.
        ushort expectedId = _remoteMessageId;
        SessionNonce expectedNonce = _remoteNonce;
        _remoteMessageId++;
        try
        {
            return (_step, header.Type) switch
            {
                (Step.ServerWaitClientHandshake, PacketType.ClientHandshake) or
                (Step.ClientWaitServerHandshake, PacketType.ServerHandshake) or
                (Step.ServerWaitAuthentication, PacketType.ClientAuthentication) => OnHandshakePacket(header.Type, body),
                _ => BeginReset(OssuaryErrorReason.UnexpectedPacket, initiator: true),
            };
        }
        catch
        {
            _remoteMessageId = expectedId;
            _remoteNonce = expectedNonce;
            throw;
        }
    }

    private OssuaryReceiveResult OnHandshakePacket(PacketType type, in ReadOnlySequence<byte> body)
    {
        // Handshake bodies are at most 200 bytes; anything longer is the wrong size for every type.
        if (body.Length > HandshakeBody.ServerHandshakeSize)
        {
            return BeginReset(OssuaryErrorReason.UnexpectedPacketSize, initiator: true);
        }

        Span<byte> copy = stackalloc byte[(int)body.Length];
        body.CopyTo(copy);
        return type switch
        {
            PacketType.ClientHandshake => ReadClientHandshake(copy),
            PacketType.ServerHandshake => ReadServerHandshake(copy),
            _ => ReadClientAuthentication(copy),
        };
    }
}
