using System.Buffers;
using System.Buffers.Binary;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Fuzzing;

/// <summary>
/// A session under test with every call checked: Receive never throws, consumes nothing or
/// exactly one whole packet, never consumes on NeedMoreData, writes plaintext only with a Data
/// result and only plaintext that a genuine sender sealed, and leaves no plaintext in the
/// caller's memory otherwise; the state after each call is one the state machine can be in.
/// Any broken invariant throws <see cref="FuzzInvariantException"/>, which the fuzzer reports as a crash.
/// </summary>
internal sealed class SessionProbe : IDisposable
{
    private readonly FuzzPlaintextWriter _plaintext = new();
    private readonly FuzzOutputWriter _output = new();
    private readonly List<byte[]> _genuinePlaintexts = [];
    private int _lastResetCount;

    public SessionProbe(OssuarySession session, FuzzClock clock)
    {
        Session = session;
        Clock = clock;
        Role = session.Role;
        CheckState("new session");
    }

    public OssuarySession Session { get; }

    public FuzzClock Clock { get; }

    public OssuaryRole Role { get; }

    /// <summary>The ephemeral public key in the last ClientHandshake or ServerHandshake this session wrote.</summary>
    public byte[]? LastEphemeralPublic { get; private set; }

    /// <summary>Called with every packet the session writes.</summary>
    public Action<ReadOnlySpan<byte>>? OnPacketWritten { get; set; }

    public int Receives { get; private set; }

    public int DataResults { get; private set; }

    /// <summary>True once the session has been established at some point.</summary>
    public bool WasEstablished { get; private set; }

    /// <summary>Registers a plaintext that a genuine sender sealed: the only plaintext a Data result may carry.</summary>
    public void AddGenuinePlaintext(byte[] plaintext)
    {
        foreach (byte[] known in _genuinePlaintexts)
        {
            if (known.AsSpan().SequenceEqual(plaintext))
            {
                return;
            }
        }

        _genuinePlaintexts.Add(plaintext);
    }

    /// <summary>One Receive call with every invariant checked; returns the result and how many bytes it consumed.</summary>
    public OssuaryReceiveResult Receive(in ReadOnlySequence<byte> input, out long consumedBytes, out SequencePosition consumed)
    {
        OssuarySessionState before = Session.State;
        int resetsBefore = Session.ResetCount;
        _plaintext.Reset();
        Receives++;
        OssuaryReceiveResult result;
        SequencePosition examined;
        try
        {
            result = Session.Receive(input, _plaintext, out consumed, out examined);
        }
        catch (Exception e) when (e is not FuzzInvariantException)
        {
            throw new FuzzInvariantException($"Receive threw {e.GetType().Name} in state {before}: {e.Message}\n{e.StackTrace}");
        }

        // Positions must lie inside the input, in order: start <= consumed <= examined <= end.
        long inputLength = input.Length;
        consumedBytes = Offset(input, consumed, "consumed");
        long examinedBytes = Offset(input, examined, "examined");
        FuzzCheck.That(consumedBytes >= 0 && consumedBytes <= inputLength, $"consumed {consumedBytes} of {inputLength} bytes");
        FuzzCheck.That(examinedBytes >= consumedBytes && examinedBytes <= inputLength, $"examined {examinedBytes} is not between consumed {consumedBytes} and the end {inputLength}");
        FuzzCheck.That(Enum.IsDefined(result.Status), $"undefined status {(int)result.Status}");

        if (result.Status == OssuaryReceiveStatus.NeedMoreData)
        {
            FuzzCheck.That(consumedBytes == 0, $"NeedMoreData consumed {consumedBytes} bytes");
            FuzzCheck.That(examinedBytes == inputLength, "NeedMoreData did not examine the whole input");
            FuzzCheck.That(!HoldsWholePacket(input), "NeedMoreData although the input holds a whole packet");
            FuzzCheck.That(before is not (OssuarySessionState.Closing or OssuarySessionState.Closed), $"NeedMoreData from a {before} session");
        }
        else if (consumedBytes != 0)
        {
            FuzzCheck.That(consumedBytes >= OssuaryProtocolLimits.HeaderSize, $"consumed {consumedBytes} bytes, less than a header");
            Span<byte> header = stackalloc byte[OssuaryProtocolLimits.HeaderSize];
            input.Slice(0, OssuaryProtocolLimits.HeaderSize).CopyTo(header);
            int bodyLength = BinaryPrimitives.ReadUInt16BigEndian(header);
            FuzzCheck.That(consumedBytes == OssuaryProtocolLimits.HeaderSize + bodyLength, $"consumed {consumedBytes} bytes for a packet of {OssuaryProtocolLimits.HeaderSize + bodyLength}");
            FuzzCheck.That(consumedBytes <= OssuaryProtocolLimits.MaxPacket, $"consumed an oversized packet of {consumedBytes} bytes");
        }
        else
        {
            // Nothing consumed and not NeedMoreData: the session is (now) closed, or it reset on a timeout.
            bool closedNow = result.Status == OssuaryReceiveStatus.Closed;
            bool timedOut = result.Status == OssuaryReceiveStatus.Reset && result.Reason == OssuaryErrorReason.HandshakeTimeout;
            FuzzCheck.That(closedNow || timedOut, $"{result.Status} ({result.Reason}) without consuming a packet");
        }

        if (result.Status == OssuaryReceiveStatus.Data)
        {
            DataResults++;
            FuzzCheck.That(before == OssuarySessionState.Established && Session.State == OssuarySessionState.Established, $"Data in state {before} -> {Session.State}");
            FuzzCheck.That(result.PlaintextLength == _plaintext.WrittenCount, $"Data reports {result.PlaintextLength} bytes but wrote {_plaintext.WrittenCount}");
            FuzzCheck.That(result.PlaintextLength <= OssuaryProtocolLimits.MaxPlaintext, $"Data of {result.PlaintextLength} bytes");
            FuzzCheck.That(consumedBytes == OssuaryProtocolLimits.HeaderSize + 20 + result.PlaintextLength, "Data from a packet whose size does not match its plaintext");
            FuzzCheck.That(IsGenuine(_plaintext.WrittenSpan), $"Data carried {result.PlaintextLength} bytes that no genuine sender sealed (a forged packet was accepted)");
        }
        else
        {
            FuzzCheck.That(result.PlaintextLength == 0, $"{result.Status} with a plaintext length of {result.PlaintextLength}");
            FuzzCheck.That(_plaintext.WrittenCount == 0, $"{result.Status} ({result.Reason}) committed {_plaintext.WrittenCount} plaintext bytes");
        }

        FuzzCheck.That(_plaintext.UncommittedIsClear(), $"{result.Status} ({result.Reason}) left bytes in plaintext memory it did not commit");

        switch (result.Status)
        {
            case OssuaryReceiveStatus.Reset:
                FuzzCheck.That(result.Reason != OssuaryErrorReason.None, "Reset without a reason");
                FuzzCheck.That(Session.State == OssuarySessionState.Resetting, $"Reset left the session {Session.State}");
                FuzzCheck.That(Session.ResetCount > resetsBefore, "Reset did not count");
                FuzzCheck.That(Session.RemotePublicKey is null, "Reset kept the peer's identity");
                FuzzCheck.That(Session.LastError == result.Reason, $"Reset({result.Reason}) but LastError is {Session.LastError}");
                break;
            case OssuaryReceiveStatus.Closed:
                FuzzCheck.That(result.Reason != OssuaryErrorReason.None, "Closed without a reason");
                FuzzCheck.That(Session.State is OssuarySessionState.Closing or OssuarySessionState.Closed, $"Closed left the session {Session.State}");
                break;
            case OssuaryReceiveStatus.UntrustedServer:
                FuzzCheck.That(Role == OssuaryRole.Client, $"UntrustedServer on a {Role}");
                FuzzCheck.That(Session.State == OssuarySessionState.AwaitingTrust, $"UntrustedServer left the session {Session.State}");
                FuzzCheck.That(Session.RemotePublicKey is not null, "UntrustedServer without the server's key");
                break;
            case OssuaryReceiveStatus.Handshake:
                FuzzCheck.That(before is not (OssuarySessionState.Closing or OssuarySessionState.Closed), $"Handshake from a {before} session");
                break;
        }

        if (before is OssuarySessionState.Closing or OssuarySessionState.Closed)
        {
            FuzzCheck.That(result.Status == OssuaryReceiveStatus.Closed && consumedBytes == 0, $"a {before} session returned {result.Status} and consumed {consumedBytes}");
        }

        CheckState($"after Receive -> {result.Status} ({result.Reason})");
        return result;
    }

    /// <summary>Writes every pending handshake and control packet, checking each one.</summary>
    public int DrainHandshake()
    {
        int packets = 0;
        while (true)
        {
            OssuarySessionState before = Session.State;
            _output.Clear();
            int count;
            try
            {
                count = Session.WriteHandshake(_output);
            }
            catch (Exception e) when (e is not FuzzInvariantException)
            {
                throw new FuzzInvariantException($"WriteHandshake threw {e.GetType().Name} in state {before}: {e.Message}\n{e.StackTrace}");
            }

            FuzzCheck.That(count == _output.WrittenCount, $"WriteHandshake returned {count} but wrote {_output.WrittenCount}");
            if (count == 0)
            {
                FuzzCheck.That(!Session.HasPendingOutput, $"WriteHandshake wrote nothing although output is pending ({before})");
                CheckState("after WriteHandshake");
                return packets;
            }

            FuzzCheck.That(before != OssuarySessionState.Closed, "a Closed session wrote a packet");
            FuzzCheck.That(++packets <= 3, "WriteHandshake keeps writing packets");
            CheckWrittenPacket(_output.WrittenSpan, handshake: true);
            OnPacketWritten?.Invoke(_output.WrittenSpan);
            if (before == OssuarySessionState.Closing)
            {
                FuzzCheck.That(Session.State == OssuarySessionState.Closed, $"a Closing session wrote its farewell and is {Session.State}");
            }

            CheckState("after WriteHandshake");
        }
    }

    /// <summary>WriteData: succeeds on an established session within the size limit, else throws the documented exception.</summary>
    public void WriteData(int length, bool multiSegment)
    {
        OssuarySessionState before = Session.State;
        byte[] plaintext = new byte[length];
        plaintext.AsSpan().Fill(0x5A);
        _output.Clear();
        int count;
        try
        {
            count = multiSegment
                ? Session.WriteData(SplitSequence.InHalves(plaintext), _output)
                : Session.WriteData(plaintext, _output);
        }
        catch (InvalidOperationException) when (before != OssuarySessionState.Established)
        {
            FuzzCheck.That(_output.WrittenCount == 0, "WriteData wrote before refusing");
            CheckState("after a refused WriteData");
            return;
        }
        catch (ArgumentOutOfRangeException) when (length > OssuaryProtocolLimits.MaxPlaintext)
        {
            FuzzCheck.That(_output.WrittenCount == 0, "WriteData wrote before refusing");
            return;
        }
        catch (Exception e) when (e is not FuzzInvariantException)
        {
            throw new FuzzInvariantException($"WriteData({length}) threw {e.GetType().Name} in state {before}: {e.Message}\n{e.StackTrace}");
        }

        FuzzCheck.That(before == OssuarySessionState.Established, $"WriteData succeeded in state {before}");
        FuzzCheck.That(length <= OssuaryProtocolLimits.MaxPlaintext, $"WriteData accepted {length} bytes");
        FuzzCheck.That(count == _output.WrittenCount && count == length + 28, $"WriteData({length}) returned {count} and wrote {_output.WrittenCount}");
        CheckWrittenPacket(_output.WrittenSpan, handshake: false);
        CheckState("after WriteData");
    }

    public void Dispose() => Session.Dispose();

    /// <summary>State-level invariants that hold between any two calls.</summary>
    public void CheckState(string when)
    {
        OssuarySessionState state = Session.State;
        FuzzCheck.That(Enum.IsDefined(state), $"{when}: undefined state {(int)state}");
        FuzzCheck.That(Session.Role == Role, $"{when}: the role changed");
        FuzzCheck.That(Session.IsEstablished == (state == OssuarySessionState.Established), $"{when}: IsEstablished={Session.IsEstablished} in state {state}");
        FuzzCheck.That(Session.ResetCount >= _lastResetCount, $"{when}: the reset count went down");
        _lastResetCount = Session.ResetCount;
        if (state == OssuarySessionState.Established)
        {
            WasEstablished = true;
            FuzzCheck.That(Session.RemotePublicKey is not null, $"{when}: established without a peer key");
        }

        if (state == OssuarySessionState.AwaitingTrust)
        {
            FuzzCheck.That(Role == OssuaryRole.Client && Session.RemotePublicKey is not null, $"{when}: AwaitingTrust on a {Role} or without a key");
        }

        if (state == OssuarySessionState.Closed)
        {
            FuzzCheck.That(!Session.HasPendingOutput, $"{when}: Closed with output pending");
            FuzzCheck.That(Session.HandshakeTimeRemaining is null, $"{when}: Closed and still timing a handshake");
        }

        if (state is OssuarySessionState.Closing or OssuarySessionState.Closed)
        {
            FuzzCheck.That(Session.LastError != OssuaryErrorReason.None, $"{when}: {state} without a reason");
        }

        if (state == OssuarySessionState.Closing)
        {
            FuzzCheck.That(Session.HasPendingOutput, $"{when}: Closing with no farewell to write");
        }

        if (state == OssuarySessionState.Resetting)
        {
            FuzzCheck.That(Session.RemotePublicKey is null, $"{when}: Resetting but still holding the peer's key");
        }

        if (Session.HandshakeTimeRemaining is TimeSpan left)
        {
            FuzzCheck.That(left >= TimeSpan.Zero, $"{when}: negative handshake time left");
        }
    }

    private void CheckWrittenPacket(ReadOnlySpan<byte> packet, bool handshake)
    {
        FuzzCheck.That(packet.Length >= OssuaryProtocolLimits.HeaderSize, $"wrote {packet.Length} bytes, less than a header");
        int bodyLength = BinaryPrimitives.ReadUInt16BigEndian(packet);
        ushort messageId = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
        FuzzCheck.That(packet.Length == OssuaryProtocolLimits.HeaderSize + bodyLength, $"wrote {packet.Length} bytes for a packet of {bodyLength + 8}");
        FuzzCheck.That(packet.Length <= OssuaryProtocolLimits.MaxPacket, $"wrote an oversized packet of {packet.Length} bytes");
        FuzzCheck.That(BinaryPrimitives.ReadUInt16BigEndian(packet[6..]) == 0, "wrote a non-zero reserved header field");
        int expectedBody = type switch
        {
            OssuaryProtocolLimits.ClientHandshake when Role == OssuaryRole.Client && handshake => OssuaryProtocolLimits.ClientHandshakeBody,
            OssuaryProtocolLimits.ClientAuthentication when Role == OssuaryRole.Client && handshake => OssuaryProtocolLimits.ClientAuthenticationBody,
            OssuaryProtocolLimits.ServerHandshake when Role != OssuaryRole.Client && handshake => OssuaryProtocolLimits.ServerHandshakeBody,
            OssuaryProtocolLimits.Reset or OssuaryProtocolLimits.Disconnect when handshake => OssuaryProtocolLimits.ControlBody,
            OssuaryProtocolLimits.EncryptedData when !handshake => bodyLength,
            _ => -1,
        };
        FuzzCheck.That(expectedBody == bodyLength, $"wrote a packet of type 0x{type:x2} and body {bodyLength} as a {Role} ({(handshake ? "handshake" : "data")})");
        if (type is OssuaryProtocolLimits.Reset or OssuaryProtocolLimits.Disconnect)
        {
            FuzzCheck.That(messageId == 0, "a Reset or Disconnect with a non-zero msg_id");
        }

        if (type is OssuaryProtocolLimits.ClientHandshake or OssuaryProtocolLimits.ServerHandshake)
        {
            LastEphemeralPublic = packet.Slice(OssuaryProtocolLimits.HeaderSize + 8, 32).ToArray();
        }
    }

    private bool IsGenuine(ReadOnlySpan<byte> plaintext)
    {
        foreach (byte[] known in _genuinePlaintexts)
        {
            if (plaintext.SequenceEqual(known))
            {
                return true;
            }
        }

        return false;
    }

    private static long Offset(in ReadOnlySequence<byte> input, SequencePosition position, string name)
    {
        try
        {
            return input.Slice(input.Start, position).Length;
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or InvalidOperationException)
        {
            throw new FuzzInvariantException($"the {name} position is not inside the input: {e.Message}");
        }
    }

    private static bool HoldsWholePacket(in ReadOnlySequence<byte> input)
    {
        if (input.Length < OssuaryProtocolLimits.HeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[2];
        input.Slice(0, 2).CopyTo(header);
        int bodyLength = BinaryPrimitives.ReadUInt16BigEndian(header);
        return bodyLength + OssuaryProtocolLimits.HeaderSize > OssuaryProtocolLimits.MaxPacket
            || input.Length >= OssuaryProtocolLimits.HeaderSize + bodyLength;
    }
}
