using System.Security.Cryptography;
using Ossuary.Pipelines.Crypto;

namespace Ossuary.Pipelines.Protocol;

/// <summary>
/// One side of one Ossuary v1 connection, with no I/O of its own (the original's "filter"
/// design): packets in through <see cref="Receive"/>, packets out through
/// <see cref="WriteHandshake"/> and <see cref="WriteData(ReadOnlySpan{byte}, System.Buffers.IBufferWriter{byte})"/>. One packet in yields at most one
/// plaintext message out, so message boundaries survive.
/// </summary>
/// <remarks>
/// <para>
/// Thread-safe: every member may be called from any thread. An internal lock, held for one packet
/// at a time, serialises the calls, so a Reset received on one thread can never take the key away
/// from a seal running on another. The lock cannot make a sequence of calls atomic:
/// <see cref="WriteData(ReadOnlySpan{byte}, System.Buffers.IBufferWriter{byte})"/> after <see cref="IsEstablished"/> returned true still throws
/// <see cref="InvalidOperationException"/> if another thread's <see cref="Receive"/> reset or ended the
/// session in between, and the caller must put the packets on the wire in the order they were
/// written (the peer accepts only the next <c>msg_id</c>). So one thread, or one lock of the
/// caller's, should own the transport writer and make every write call (<see cref="WriteData(ReadOnlySpan{byte}, System.Buffers.IBufferWriter{byte})"/>,
/// <see cref="WriteHandshake"/>); another may call <see cref="Receive"/>, and the writer must take
/// an <see cref="InvalidOperationException"/> from <see cref="WriteData(ReadOnlySpan{byte}, System.Buffers.IBufferWriter{byte})"/> to mean "the session
/// reset or ended". A call racing <see cref="Dispose"/> either finishes first or finds the session closed.
/// </para>
/// <para>
/// Deliberate differences from libossuary 0.5: an authenticated server refuses an unknown or
/// anonymous client at once with Disconnect (error) instead of five resets (unless
/// <see cref="OssuarySessionOptions.RefuseUnauthorizedClientsAtOnce"/> is off); an unauthenticated
/// server verifies the signature of a client that presents a key, so
/// <see cref="RemotePublicKey"/> is never a claim nobody proved; an all-zero X25519 result is
/// refused; a session that has received Disconnect is closed for good (once established, the
/// original answers a Disconnect with a Reset and waits for a re-handshake that never comes; we
/// send the same answer, so the bytes on the wire match, and stop); a Disconnect whose body is
/// shorter than its 4 bytes ends the session as a failure (the original cannot parse it, and drops
/// it during the handshake); a handshake packet whose body runs past its fixed size is refused (the
/// original ignores the extra bytes); the fifth reset fails the
/// connection also when the peer started it (the original answers every Reset it receives, so a
/// peer streaming Resets had it generate keys and answer without end).
/// </para>
/// </remarks>
public sealed partial class OssuarySession : IDisposable
{
    /// <summary>The most plaintext one EncryptedData packet carries.</summary>
    public const int MaxPlaintextLength = PacketHeader.MaxPacketSize - PacketHeader.Size - EncryptedBlob.Overhead;

    /// <summary>The packet length for <see cref="MaxPlaintextLength"/> bytes of plaintext.</summary>
    public const int MaxPacketLength = PacketHeader.MaxPacketSize;

    /// <summary>Bytes a data packet adds to its plaintext.</summary>
    public const int DataPacketOverhead = PacketHeader.Size + EncryptedBlob.Overhead;

    /// <summary>The fifth reset of a connection turns into a permanent failure.</summary>
    internal const int MaxResets = 5;

    /// <summary>
    /// Guards every state change and every seal and open: a Reset received on one thread must
    /// not dispose the cipher, or swap the generation, under a seal running on another. Held for
    /// one packet at a time; uncontended it costs a few nanoseconds and allocates nothing.
    /// </summary>
    private readonly Lock _gate = new();

    /// <summary>
    /// The lock every state change, seal and open takes (see <c>_gate</c>): an adapter that must hold several
    /// calls together (a batch of frames, a closing transition) takes this one around them, which the
    /// calls then re-enter, instead of a lock of its own (40 B a connection).
    /// </summary>
    internal Lock Gate => _gate;
    private readonly RandomSource _random;
    private readonly TimeProvider _time;
    private readonly TimeSpan _handshakeTimeout;
    private readonly TimeSpan _resetTimeout;
    private readonly TimeSpan _trustTimeout;
    private readonly OssuaryIdentity? _identity;
    private readonly bool _ownsIdentity;
    // An array and its count, not a List: a held connection keeps no list object around it. It grows
    // by doubling, as a List does: copied whole on every AddAuthorizedKey, a long allow-list added one
    // key at a time cost the square of its length (5,000 keys copied 100 MB of references).
    private OssuaryPublicKey[] _authorizedKeys;
    private int _authorizedKeyCount;
    private readonly bool _refuseAtOnce;

    // Inline: a reset's handshake signs the same challenge again, so an idle session keeps it (an array was 24 B more).
    private readonly Bytes32 _localChallenge;

    // Handshake material: made for each handshake and dropped once it is established, so an idle
    // connection holds none of it (about 260 B a side); a reset makes it again.
    private byte[]? _remoteChallenge;
    private byte[]? _remoteEphemeralKey;
    private EphemeralKeyPair? _ephemeral;
    private SessionNonce _localNonce;
    private SessionNonce _remoteNonce;
    private RecordCipher? _cipher;

    private Step _step;
    private OssuaryPublicKey? _remotePublicKey;
    private OssuaryErrorReason _lastError;

    /// <summary>What <see cref="Receive"/> reports once the session has ended.</summary>
    private OssuaryErrorReason _closedResult;
    private ushort _localMessageId;
    private ushort _remoteMessageId;
    private int _resetCount;
    private bool _resetAnswerPending;
    private long _waitStarted;
    private Farewell _farewell;

    /// <summary>Creates a session from <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">The options are invalid; the message says which setting to fix.</exception>
    public OssuarySession(OssuarySessionOptions options)
        : this(options, RandomSource.Secure)
    {
    }

    internal OssuarySession(OssuarySessionOptions options, RandomSource random)
    {
        ArgumentNullException.ThrowIfNull(options);
        // A pattern, not Enum.IsDefined: under NativeAOT that builds the enum's reflection data on
        // first use, a tenth of the C library's first ossuary_create_connection.
        if (options.Role is not (OssuaryRole.Client or OssuaryRole.AuthenticatedServer or OssuaryRole.UnauthenticatedServer))
        {
            throw new ArgumentException($"{nameof(options.Role)} must be Client, AuthenticatedServer or UnauthenticatedServer.", nameof(options));
        }

        RequirePositive(options.HandshakeTimeout, nameof(options.HandshakeTimeout), OssuarySessionOptions.DefaultHandshakeTimeout, nameof(options));
        RequirePositive(options.ResetTimeout, nameof(options.ResetTimeout), OssuarySessionOptions.DefaultResetTimeout, nameof(options));
        RequirePositive(options.TrustDecisionTimeout, nameof(options.TrustDecisionTimeout), OssuarySessionOptions.DefaultTrustDecisionTimeout, nameof(options));

        Role = options.Role;
        _random = random;
        _time = options.TimeProvider ?? throw new ArgumentException($"{nameof(options.TimeProvider)} must not be null.", nameof(options));
        _handshakeTimeout = options.HandshakeTimeout;
        _resetTimeout = options.ResetTimeout;
        _trustTimeout = options.TrustDecisionTimeout;
        _authorizedKeys = [.. options.AuthorizedKeys];
        _authorizedKeyCount = _authorizedKeys.Length;
        if (Array.Exists(_authorizedKeys, key => key is null))
        {
            // Checked here, as AddAuthorizedKey checks its key: otherwise the first handshake that
            // consults the list throws NullReferenceException out of Receive.
            throw new ArgumentException($"{nameof(options.AuthorizedKeys)} must not contain null.", nameof(options));
        }

        _refuseAtOnce = options.RefuseUnauthorizedClientsAtOnce;

        // The original draws in this order (challenge, ephemeral secret, nonce, then a missing
        // server identity); the recorded vectors replay these draws, so the order is part of the contract.
        random.Fill(_localChallenge);
        NewEphemeralMaterial();
        _identity = options.Identity;
        if (_identity is null && Role != OssuaryRole.Client)
        {
            Span<byte> seed = stackalloc byte[OssuaryIdentity.SeedSize];
            random.Fill(seed);
            _identity = OssuaryIdentity.FromSeed(seed);
            CryptographicOperations.ZeroMemory(seed);
            _ownsIdentity = true;
        }

        EnterInitialStep();
    }

    private enum Step
    {
        ClientSendHandshake,
        ClientWaitServerHandshake,
        ClientAwaitingTrust,
        ClientSendAuthentication,
        ServerWaitClientHandshake,
        ServerSendHandshake,
        ServerWaitAuthentication,
        Established,
        SendResetThenWait,
        ResetWait,
        SendFarewell,
        Closed,
    }

    private enum Farewell
    {
        CleanDisconnect,
        ErrorDisconnect,
        Reset,
    }

    /// <summary>The side this session plays.</summary>
    public OssuaryRole Role { get; }

    /// <summary>This side's public key, or <see cref="OssuaryPublicKey.Anonymous"/> for a client without an identity.</summary>
    public OssuaryPublicKey LocalPublicKey => _identity?.PublicKey ?? OssuaryPublicKey.Anonymous;

    /// <summary>
    /// The peer's proven identity key: the server's once its ServerHandshake verified (before
    /// trust is decided), the client's once the server accepted its ClientAuthentication
    /// (<see cref="OssuaryPublicKey.Anonymous"/> for an anonymous client). Null before that and after a reset.
    /// </summary>
    public OssuaryPublicKey? RemotePublicKey
    {
        get
        {
            lock (_gate)
            {
                return _remotePublicKey;
            }
        }
    }

    /// <summary>Why the session last reset or ended; <see cref="OssuaryErrorReason.None"/> if it never did.</summary>
    public OssuaryErrorReason LastError
    {
        get
        {
            lock (_gate)
            {
                return _lastError;
            }
        }
    }

    /// <summary>How many resets this connection has seen; the fifth is fatal.</summary>
    public int ResetCount
    {
        get
        {
            lock (_gate)
            {
                return _resetCount;
            }
        }
    }

    /// <summary>Where the session stands.</summary>
    public OssuarySessionState State
    {
        get
        {
            lock (_gate)
            {
                return CurrentState;
            }
        }
    }

    private OssuarySessionState CurrentState => _resetAnswerPending && _step is not (Step.SendFarewell or Step.Closed)
        ? OssuarySessionState.Resetting
        : _step switch
    {
        Step.ClientAwaitingTrust => OssuarySessionState.AwaitingTrust,
        Step.Established => OssuarySessionState.Established,
        Step.SendResetThenWait or Step.ResetWait => OssuarySessionState.Resetting,
        Step.SendFarewell => OssuarySessionState.Closing,
        Step.Closed => OssuarySessionState.Closed,
        _ => OssuarySessionState.Handshaking,
    };

    /// <summary>True once records can be sent and received.</summary>
    /// <remarks>A snapshot: another thread's <see cref="Receive"/> may end the session at any moment after.</remarks>
    public bool IsEstablished
    {
        get
        {
            lock (_gate)
            {
                return _step == Step.Established;
            }
        }
    }

    /// <summary>True when <see cref="WriteHandshake"/> has a packet to write.</summary>
    public bool HasPendingOutput
    {
        get
        {
            lock (_gate)
            {
                return _resetAnswerPending || _step is Step.ClientSendHandshake or Step.ServerSendHandshake
                    or Step.ClientSendAuthentication or Step.SendResetThenWait or Step.SendFarewell;
            }
        }
    }

    /// <summary>
    /// Time left before the current wait times out, or null when the session is not waiting:
    /// for the peer's next handshake packet (<see cref="OssuarySessionOptions.HandshakeTimeout"/>),
    /// for the peer's answer to our Reset (<see cref="OssuarySessionOptions.ResetTimeout"/>), or for
    /// the application's trust decision (<see cref="OssuarySessionOptions.TrustDecisionTimeout"/>).
    /// An adapter sleeps at most this long before calling <see cref="CheckHandshakeTimeout"/>.
    /// </summary>
    public TimeSpan? HandshakeTimeRemaining
    {
        get
        {
            lock (_gate)
            {
                if (CurrentWaitLimit is not TimeSpan limit)
                {
                    return null;
                }

                // The wait is due once the limit is passed ("more than 3 seconds"), not at it: at the
                // limit itself a tick is left, so that zero always means CheckHandshakeTimeout acts (a
                // caller that sleeps what this says and then checks never finds "none left, not due").
                TimeSpan left = limit - _time.GetElapsedTime(_waitStarted);
                return left > TimeSpan.Zero ? left : left == TimeSpan.Zero ? TimeSpan.FromTicks(1) : TimeSpan.Zero;
            }
        }
    }

    /// <summary>How long the current step may wait, or null if it waits for nothing (it has something to write, or is established or closed).</summary>
    private TimeSpan? CurrentWaitLimit => _step switch
    {
        Step.ClientWaitServerHandshake or Step.ServerWaitClientHandshake or Step.ServerWaitAuthentication => _handshakeTimeout,
        Step.ResetWait => _resetTimeout,
        Step.ClientAwaitingTrust => _trustTimeout,
        _ => null,
    };

    /// <summary>
    /// Acts on an overdue wait. A handshake packet that is overdue resets the session (as the
    /// original does); an unanswered Reset or an undecided trust question closes it with
    /// Disconnect (error) and <see cref="OssuaryErrorReason.HandshakeTimeout"/>, where the original
    /// would wait forever. <see cref="Receive"/> and <see cref="WriteHandshake"/> check this themselves.
    /// </summary>
    /// <returns>True if the session just reset or closed because of a timeout.</returns>
    public bool CheckHandshakeTimeout()
    {
        lock (_gate)
        {
            return CheckTimeout();
        }
    }

    private bool CheckTimeout()
    {
        if (CurrentWaitLimit is not TimeSpan limit || _time.GetElapsedTime(_waitStarted) <= limit)
        {
            return false;
        }

        if (_step is Step.ResetWait or Step.ClientAwaitingTrust)
        {
            // Another Reset would wait on the same silence: give up and say so.
            Close(OssuaryErrorReason.HandshakeTimeout, Farewell.ErrorDisconnect);
        }
        else
        {
            BeginReset(OssuaryErrorReason.HandshakeTimeout, initiator: true);
        }

        return true;
    }

    private static void RequirePositive(TimeSpan value, string name, TimeSpan defaultValue, string paramName)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{name} must be positive (default {defaultValue.TotalSeconds:0.###} s); it bounds a wait that would otherwise last forever.", paramName);
        }
    }

    /// <summary>
    /// Adds a key to the allow-list (a trusted server for a client, an admitted client for an
    /// authenticated server). A client paused in <see cref="OssuarySessionState.AwaitingTrust"/>
    /// resumes if the key is the server's: this is trust on first use. A key added once
    /// <see cref="OssuarySessionOptions.TrustDecisionTimeout"/> has passed comes too late: the session
    /// closes for the timeout instead, as <see cref="CheckHandshakeTimeout"/> would have closed it.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    public void AddAuthorizedKey(OssuaryPublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_gate)
        {
            if (_authorizedKeyCount == _authorizedKeys.Length)
            {
                Array.Resize(ref _authorizedKeys, Math.Max(4, _authorizedKeys.Length * 2));
            }

            _authorizedKeys[_authorizedKeyCount++] = key;

            // A decision that comes after TrustDecisionTimeout is too late even if no call looked at the
            // clock in between: it resumed the handshake, and the deadline held only for a caller that checked.
            if (_step == Step.ClientAwaitingTrust && key == _remotePublicKey && !CheckTimeout())
            {
                _step = Step.ClientSendAuthentication;
            }
        }
    }

    /// <summary>
    /// Makes room for <paramref name="count"/> more keys, so that as many <see cref="AddAuthorizedKey"/>
    /// calls after it allocate nothing: the C library's calls that trust keys either trust them all or
    /// change nothing, and must not run out of memory half way.
    /// </summary>
    internal void ReserveAuthorizedKeys(int count)
    {
        lock (_gate)
        {
            int needed = _authorizedKeyCount + count;
            if (needed > _authorizedKeys.Length)
            {
                Array.Resize(ref _authorizedKeys, Math.Max(needed, Math.Max(4, _authorizedKeys.Length * 2)));
            }
        }
    }

    /// <summary>
    /// Ends the session: the next <see cref="WriteHandshake"/> writes a Disconnect with the error
    /// flag set as given, after which the session is closed. Does nothing on a closed session.
    /// A failure (<paramref name="error"/> true) reported while a clean Disconnect is still to be
    /// written turns it into a Disconnect with the error flag; nothing turns a failure back into a
    /// clean close.
    /// </summary>
    /// <param name="error">False for a clean close (the peer reports "connection closed"), true for a failure.</param>
    public void Disconnect(bool error)
    {
        lock (_gate)
        {
            if (_step == Step.SendFarewell && error && _farewell == Farewell.CleanDisconnect)
            {
                // The caller learnt of a failure after asking for a clean close: the peer must not
                // be told that all went well when data may have been lost (the original's
                // disconnect() also sends what the latest call says).
                _farewell = Farewell.ErrorDisconnect;
                _lastError = _closedResult = OssuaryErrorReason.ConnectionFailed;
                return;
            }

            if (_step is Step.SendFarewell or Step.Closed)
            {
                return;
            }

            Close(error ? OssuaryErrorReason.ConnectionFailed : OssuaryErrorReason.ConnectionClosed,
                error ? Farewell.ErrorDisconnect : Farewell.CleanDisconnect);
        }
    }

    /// <summary>
    /// Zeroes the session's secrets and frees its cipher contexts. Safe while another thread is in
    /// a call: that call finishes first, and every later one finds the session closed.
    /// </summary>
    /// <remarks>
    /// A later <see cref="Receive"/> reports <see cref="OssuaryReceiveStatus.Closed"/> with the reason the
    /// session had ended with, or <see cref="LastError"/> if it had not ended (<see cref="OssuaryErrorReason.None"/>
    /// for a session that never reset): disposal sends nothing, so it is not a clean close for the peer.
    /// </remarks>
    public void Dispose()
    {
        lock (_gate)
        {
            ForgetSessionKey();
            _ephemeral?.Dispose();
            if (_ownsIdentity)
            {
                _identity!.Dispose();
            }

            if (_step != Step.Closed)
            {
                _closedResult = _step == Step.SendFarewell ? _closedResult : _lastError;
                _step = Step.Closed;
            }

            // An answer to the peer's Reset not yet written is not written now: WriteHandshake put it
            // on the wire after Dispose, and HasPendingOutput said there was more to send.
            _resetAnswerPending = false;
        }
    }

    private void EnterInitialStep()
    {
        if (Role == OssuaryRole.Client)
        {
            _step = Step.ClientSendHandshake;
        }
        else
        {
            EnterWait(Step.ServerWaitClientHandshake);
        }
    }

    private void EnterWait(Step step)
    {
        _step = step;
        _waitStarted = _time.GetTimestamp();
    }

    private void NewEphemeralMaterial()
    {
        _remoteChallenge ??= new byte[HandshakeBody.ChallengeSize];
        _remoteEphemeralKey ??= new byte[HandshakeBody.KeySize];
        (_ephemeral ??= new EphemeralKeyPair()).Regenerate(_random);
        Span<byte> nonce = stackalloc byte[SessionNonce.Size];
        _random.Fill(nonce);
        _localNonce = SessionNonce.From(nonce);
    }

    private EphemeralKeyPair Ephemeral => _ephemeral ?? throw NoHandshakeMaterial();

    private byte[] RemoteChallenge => _remoteChallenge ?? throw NoHandshakeMaterial();

    private byte[] RemoteEphemeralKey => _remoteEphemeralKey ?? throw NoHandshakeMaterial();

    private static InvalidOperationException NoHandshakeMaterial() =>
        new("The session used handshake material outside a handshake (a bug in the session's steps).");

    /// <summary>The handshake is done: the session key is all it needs until a reset.</summary>
    private void EnterEstablished()
    {
        _step = Step.Established;
        ForgetHandshakeMaterial();
    }

    /// <summary>Zeroes the ephemeral secret (if no key agreement used it yet) and drops the rest of the handshake's material.</summary>
    private void ForgetHandshakeMaterial()
    {
        _ephemeral?.Dispose();
        _ephemeral = null;
        _remoteChallenge = null;
        _remoteEphemeralKey = null;
    }

    private void ForgetSessionKey()
    {
        _cipher?.Dispose();
        _cipher = null;
    }

    /// <summary>
    /// Throws this generation away, as the original's reset does: fresh ephemeral keys and nonce,
    /// counters to 0, peer identity forgotten (the challenge survives, as in the original).
    /// </summary>
    /// <remarks>
    /// The fifth reset of a connection is a failure whichever side starts it. The original fails
    /// only the side that starts it and answers every Reset it receives, so a peer streaming
    /// 12-byte Resets bought a fresh key pair and an answer each, without end. A conforming peer
    /// never meets the difference: both sides count every reset, and its own fifth is already a
    /// Disconnect (error), so the Resets it sends arrive at our first four.
    /// </remarks>
    /// <exception cref="OutOfMemoryException">No room for the new generation's keys: the session is as it was.</exception>
    private OssuaryReceiveResult BeginReset(OssuaryErrorReason reason, bool initiator)
    {
        // The new generation's material first, the only step that can fail (no memory: the C library's
        // full heap, whose call then returns -1 having changed nothing). Made after the session key
        // was forgotten, a failure left an established session with no key: it still said Established,
        // every record it sealed or opened threw, for ever, and the reset was counted twice once a
        // retry got through.
        try
        {
            NewEphemeralMaterial();
        }
        catch when (_step == Step.Established)
        {
            // An established session holds no handshake material (EnterEstablished): none is kept for the retry.
            ForgetHandshakeMaterial();
            throw;
        }

        _lastError = reason;
        _resetCount++;
        ForgetSessionKey();
        _localMessageId = 0;
        _remoteMessageId = 0;
        _remotePublicKey = null;
        if (_resetCount >= MaxResets)
        {
            // As the original: this call reports the cause (its recv returns the error that caused
            // the fifth reset), every later one that the connection failed. LastError keeps the cause.
            Close(reason, Farewell.ErrorDisconnect, reportedAfter: OssuaryErrorReason.ConnectionFailed);
            return OssuaryReceiveResult.Closed(reason);
        }

        // The side answering a peer's Reset starts over at once: everything the peer sends after
        // its Reset belongs to the new handshake, even if it arrives before our answer is written.
        _resetAnswerPending = !initiator;
        if (initiator)
        {
            _step = Step.SendResetThenWait;
        }
        else
        {
            EnterInitialStep();
        }

        return OssuaryReceiveResult.Reset(reason);
    }

    /// <param name="reason">Why the session ended: <see cref="LastError"/>, and what <see cref="Receive"/> reports.</param>
    /// <param name="farewell">The last packet to write.</param>
    /// <param name="reportedAfter">What <see cref="Receive"/> reports on later calls, if not <paramref name="reason"/>.</param>
    private void Close(OssuaryErrorReason reason, Farewell farewell, OssuaryErrorReason? reportedAfter = null)
    {
        _resetAnswerPending = false;
        _lastError = reason;
        _closedResult = reportedAfter ?? reason;
        ForgetSessionKey();

        // A session that ends during its handshake never agrees a key: its secret, live until then,
        // went only with Dispose (the fifth reset had even drawn a fresh one just before closing).
        ForgetHandshakeMaterial();
        _farewell = farewell;
        _step = Step.SendFarewell;
    }

    private bool IsAuthorized(ReadOnlySpan<byte> key)
    {
        // Visit every entry so the time taken does not depend on where (or whether) the key matched.
        bool found = false;
        foreach (OssuaryPublicKey candidate in _authorizedKeys.AsSpan(0, _authorizedKeyCount))
        {
            found |= candidate.Equals(key);
        }

        return found;
    }
}
