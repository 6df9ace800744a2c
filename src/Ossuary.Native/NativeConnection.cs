using System.Buffers;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Native;

/// <summary>
/// What an <c>OssuaryConnection *</c> stands for (a handle in the export table, never reused): one <see cref="OssuarySession"/>
/// plus the buffering that turns its packet-at-a-time interface into libossuary's byte-buffer
/// calls with partial reads and writes. Every method runs under the connection's lock.
/// </summary>
internal sealed class NativeConnection : IDisposable
{
    private readonly OssuaryRole _role;
    private readonly List<OssuaryPublicKey> _authorizedKeys = [];
    private readonly InboundPacket _inbound = new();
    private readonly OutboundQueue _outbound = new();
    private readonly PooledPlaintext _plaintext = new();
    private OssuaryIdentity? _identity;
    private OssuarySession _session;

    /// <summary>Set once a byte has gone out or come in: from then on the identity is fixed.</summary>
    private bool _started;

    /// <summary>Where the last handshake packet queued ends in the output stream.</summary>
    private long _handshakeOutputEnd;

    /// <summary>The current pause for an untrusted server has been reported (libossuary reports it once).</summary>
    private bool _untrustedReported;

    /// <summary>What made the last <see cref="SendHandshake"/> stop early, when it returned the bytes it had handed out instead of failing.</summary>
    private Exception? _withheldFailure;

    public NativeConnection(OssuaryRole role, OssuaryIdentity? identity)
    {
        _role = role;
        _identity = identity;
        _session = CreateSession(identity);
    }

    public Lock Gate { get; } = new();

    public OssuaryPublicKey? RemotePublicKey => _session.RemotePublicKey;

    /// <summary>
    /// Replaces this side's identity. Only before the first byte is exchanged: the session signs
    /// with the identity it was created with, so a fresh session is made around the new one.
    /// </summary>
    /// <returns>False (and the identity disposed) once the handshake has begun, or once the connection has been ended.</returns>
    /// <exception cref="OutOfMemoryException">No room for the new session: the identity is disposed and the connection is as it was.</exception>
    public bool TrySetIdentity(OssuaryIdentity identity)
    {
        // A fresh session would also forget an ossuary_disconnect() made before the first byte.
        if (_started || _session.State != OssuarySessionState.Handshaking)
        {
            identity.Dispose();
            return false;
        }

        // The session first, the only step that can fail (a full heap): the call then returns -1, so
        // the key in force and its session must stay, and the refused key goes (its seed wiped).
        // Stored first, the refused key took the place of the one the old session went on signing
        // with, which nothing then disposed: its seed waited for the finalizer, at a collection that
        // may not come for long.
        OssuarySession session;
        try
        {
            session = CreateSession(identity);
        }
        catch
        {
            identity.Dispose();
            throw;
        }

        OssuarySession oldSession = _session;
        OssuaryIdentity? oldIdentity = _identity;
        _identity = identity;
        _session = session;

        // A send call with no room may have had the old session write its ClientHandshake into
        // the queue: none of it went out (or _started would be set), and the new session writes
        // its own, so the old one must not follow it onto the wire.
        _outbound.Discard();
        _handshakeOutputEnd = _outbound.Queued;
        oldSession.Dispose();
        oldIdentity?.Dispose();
        return true;
    }

    /// <summary>Trusts every key of <paramref name="keys"/>, or none (the C API's -1).</summary>
    /// <exception cref="OutOfMemoryException">No room for the keys: none of them was added.</exception>
    public void AddAuthorizedKeys(ReadOnlySpan<OssuaryPublicKey> keys)
    {
        foreach (OssuaryPublicKey key in keys)
        {
            ArgumentNullException.ThrowIfNull(key);
        }

        // ossuary.h: the pause for a trust decision lasts at most one minute. The session acts on
        // an overdue wait only when it next sends or receives, so a key added after the minute,
        // with no call in between, would still resume the handshake: end the wait first.
        if (_session.State == OssuarySessionState.AwaitingTrust)
        {
            _session.CheckHandshakeTimeout();
        }

        // Room for every key on the list and in the session first, the only steps that can fail (a
        // full heap); then nothing below allocates. A key put on the list before the session failed
        // to take it was trusted by the next session (made by ossuary_set_secret_key) although its
        // call returned -1, and a batch that failed part way had trusted its first keys.
        _authorizedKeys.EnsureCapacity(_authorizedKeys.Count + keys.Length);
        AllocationFault.At(AllocationFault.Trust);
        _session.ReserveAuthorizedKeys(keys.Length);
        foreach (OssuaryPublicKey key in keys)
        {
            _session.AddAuthorizedKey(key);
            _authorizedKeys.Add(key);
        }
    }

    /// <inheritdoc cref="AddAuthorizedKeys"/>
    public void AddAuthorizedKey(OssuaryPublicKey key) => AddAuthorizedKeys(new ReadOnlySpan<OssuaryPublicKey>(in key));

    public void Disconnect(bool error) => _session.Disconnect(error);

    /// <summary>A handshake packet (or the final Disconnect) is still partly in the queue.</summary>
    private bool HandshakeOutputPending => _outbound.Drained < _handshakeOutputEnd;

    /// <summary>1 established, 0 under way (or output still to hand out), -65 untrusted server (once per pause), -1 ended.</summary>
    public int HandshakeDone()
    {
        OssuarySessionState state = _session.State;
        if (state != OssuarySessionState.AwaitingTrust)
        {
            _untrustedReported = false;
        }

        switch (state)
        {
            case OssuarySessionState.Established:
                // The last handshake packet must leave before the caller switches to data calls.
                return HandshakeOutputPending ? 0 : 1;
            case OssuarySessionState.AwaitingTrust when !_untrustedReported:
                _untrustedReported = true;
                return ReturnCode.UntrustedServer;
            case OssuarySessionState.Closed:
                // A final Disconnect still queued keeps the caller in its handshake loop until it is out.
                return HandshakeOutputPending ? 0 : ReturnCode.Other;
            default:
                return 0;
        }
    }

    public int SendHandshake(Span<byte> output, out int written)
    {
        written = _outbound.DrainTo(output);
        if (_outbound.IsEmpty)
        {
            try
            {
                while (WriteHandshakePacket() > 0)
                {
                    _handshakeOutputEnd = _outbound.Queued;
                }
            }
            catch (Exception failure) when (written > 0 || !_outbound.IsEmpty)
            {
                // No room for the next packet (a full heap), after bytes left the queue or a packet
                // joined it: -1 would report nothing written, and the bytes handed out would be lost
                // for good (the peer waiting on a packet cut short). They are reported instead; the
                // packet that failed is still owed (WriteHandshake leaves it so) and the next call writes it.
                // Kept for the export, which says on stderr what was not for want of memory (a bug):
                // swallowed here, it left no trace.
                _withheldFailure = failure;
            }

            written += _outbound.DrainTo(output[written..]);
        }

        _started |= written > 0;
        return _outbound.IsEmpty ? written : ReturnCode.WouldBlock;
    }

    /// <summary>The failure the last <see cref="SendHandshake"/> withheld to report its bytes (null if none); cleared by the reading.</summary>
    public Exception? TakeWithheldFailure()
    {
        Exception? failure = _withheldFailure;
        _withheldFailure = null;
        return failure;
    }

    public int ReceiveHandshake(ReadOnlySpan<byte> input, out int consumed)
    {
        consumed = 0;
        if (_session.State is OssuarySessionState.Established or OssuarySessionState.Closing or OssuarySessionState.Closed)
        {
            // Nothing for the handshake: the bytes stay with the caller (for ossuary_recv_data).
            return 0;
        }

        int taken = _inbound.Length;
        OssuaryReceiveStatus status;
        try
        {
            consumed = _inbound.TakeHeader(input);
            consumed += _inbound.TakeBody(input[consumed..]);
            if (!_inbound.IsReady)
            {
                _started |= consumed > 0;
                return ReturnCode.WouldBlock;
            }

            _plaintext.Clear();
            status = Deliver();
        }
        catch
        {
            // No memory for the packet or its plaintext: the export reports nothing consumed, so nothing is.
            _inbound.TruncateTo(taken);
            throw;
        }
        finally
        {
            _plaintext.Clear();
        }

        _started |= consumed > 0;
        return status switch
        {
            OssuaryReceiveStatus.Handshake or OssuaryReceiveStatus.UntrustedServer or OssuaryReceiveStatus.Data => consumed,
            OssuaryReceiveStatus.NeedMoreData => ReturnCode.WouldBlock,
            _ => ReturnCode.Other, // Reset or Closed, as libossuary reports them
        };
    }

    public int SendData(ReadOnlySpan<byte> plaintext, Span<byte> output, out int written)
    {
        written = 0;
        if (plaintext.Length > OssuarySession.MaxPlaintextLength
            || _session.State != OssuarySessionState.Established
            || _outbound.Length > OutboundQueue.MaxPending)
        {
            return ReturnCode.Other;
        }

        _session.WriteData(plaintext, _outbound);
        written = _outbound.DrainTo(output);
        return _outbound.IsEmpty ? written : ReturnCode.WouldBlock;
    }

    public int ReceiveData(ReadOnlySpan<byte> input, out int consumed, Span<byte> output, out int written)
    {
        consumed = 0;
        written = 0;
        OssuarySessionState state = _session.State;
        if (state == OssuarySessionState.Closed)
        {
            return 0; // libossuary answers a finished connection with nothing, not an error
        }

        if (state != OssuarySessionState.Established)
        {
            return ReturnCode.Other;
        }

        int taken = _inbound.Length;
        OssuaryReceiveStatus status;
        try
        {
            consumed = _inbound.TakeHeader(input);
            if (_inbound.HasHeader && !_inbound.IsOversized && _inbound.PlaintextLength > output.Length)
            {
                // Refuse before the body is taken: the packet stays whole, so a call with a larger
                // output buffer still gets the message.
                return ReturnCode.Other;
            }

            consumed += _inbound.TakeBody(input[consumed..]);
            if (!_inbound.IsReady)
            {
                return ReturnCode.WouldBlock;
            }

            _plaintext.Clear();
            status = Deliver();
        }
        catch
        {
            // No memory for the packet or its plaintext: the export reports nothing consumed, so
            // nothing is (the session is as it was), and the caller hands the same bytes in again.
            // Kept, they were taken twice: a header that had been taken made the retry fail for
            // ever, and a whole packet came out of a retry that reported 0 (the end of the
            // connection), its bytes still in the caller's buffer to be fed in again.
            _inbound.TruncateTo(taken);
            _plaintext.Clear();
            throw;
        }

        try
        {
            switch (status)
            {
                case OssuaryReceiveStatus.Data:
                    _plaintext.WrittenSpan.CopyTo(output);
                    written = _plaintext.WrittenCount;
                    return consumed;
                case OssuaryReceiveStatus.Handshake:
                    return consumed; // a packet the session ignores in its state
                case OssuaryReceiveStatus.NeedMoreData:
                    return ReturnCode.WouldBlock;
                default:
                    return ReturnCode.Other; // Reset (the handshake starts over) or Closed
            }
        }
        finally
        {
            _plaintext.Clear();
        }
    }

    /// <summary>The bytes handed out; WouldBlock when there was no room for any of those waiting, since 0 says nothing waits.</summary>
    public int Flush(Span<byte> output)
    {
        if (output.IsEmpty && !_outbound.IsEmpty)
        {
            return ReturnCode.WouldBlock;
        }

        int written = _outbound.DrainTo(output);

        // What send_handshake kept back (its ClientHandshake, say) may leave here: a byte has gone out.
        _started |= written > 0;
        return written;
    }

    public void Dispose()
    {
        _session.Dispose();
        _inbound.Dispose();
        _outbound.Dispose();
        _plaintext.Clear();
        _identity?.Dispose();
        _identity = null;
    }

    /// <summary>Hands the gathered packet to the session and forgets it if the session consumed it.</summary>
    private OssuaryReceiveStatus Deliver()
    {
        ReadOnlySequence<byte> packet = _inbound.Bytes;
        OssuaryReceiveResult result = _session.Receive(packet, _plaintext, out SequencePosition consumed, out _);
        if (packet.GetOffset(consumed) > 0 || _inbound.IsOversized)
        {
            _inbound.Clear();
        }

        return result.Status;
    }

    private int WriteHandshakePacket()
    {
        AllocationFault.At(AllocationFault.HandshakePacket);
        return _session.WriteHandshake(_outbound);
    }

    private OssuarySession CreateSession(OssuaryIdentity? identity)
    {
        AllocationFault.At(AllocationFault.Session);
        var options = new OssuarySessionOptions
        {
            Role = _role,
            Identity = identity,

            // libossuary's behaviour, which C peers expect: an unknown client is reset like any
            // recoverable error until the fifth reset fails the connection.
            RefuseUnauthorizedClientsAtOnce = false,
        };
        foreach (OssuaryPublicKey key in _authorizedKeys)
        {
            options.AuthorizedKeys.Add(key);
        }

        return new OssuarySession(options);
    }
}
