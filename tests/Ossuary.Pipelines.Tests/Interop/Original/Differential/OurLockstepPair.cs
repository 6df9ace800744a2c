using System.Buffers;
using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>Where our run did something a documented difference predicts (see <see cref="KnownDifferences"/>).</summary>
internal sealed record Marker(int Line, string Side, string Kind);

/// <summary>
/// Our two <see cref="OssuarySession"/>s driven through the loop of the original's oracle
/// (tests/differential/original_pair.c, itself ref-peer pair's loop), printing the same lines.
/// The original's C/Rust API is emulated on top of the session: <c>handshake_done</c> from
/// <see cref="OssuarySession.State"/> (untrusted server reported once per pause, as 0.5 does;
/// "closing" still counts as not done, so the farewell gets written), <c>recv_handshake</c>
/// returns Ok(0) without reading once established or closed (0.5 does not read then), and a
/// receive call gets at most one whole packet, exactly as the oracle hands them.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Run, the pair's one use, disposes both sides in its finally.")]
internal sealed class OurLockstepPair
{
    private const int MaxRounds = 400;
    private readonly DiffScenario _scenario;
    private readonly Side _client;
    private readonly Side _server;
    private readonly List<string> _lines = [];
    private readonly List<Marker> _markers = [];
    private readonly SeededDraws _draws;

    public OurLockstepPair(DiffScenario scenario, bool refuseAtOnce = false)
    {
        _scenario = scenario;
        var draws = _draws = new SeededDraws(scenario.DrawSeed);
        var time = new FakeTimeProvider();

        // Created in the original's order (client, then server): both draw from one stream.
        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client, TimeProvider = time };
        if (scenario.ClientSecret is not null)
        {
            clientOptions.Identity = OssuaryIdentity.FromSeed(scenario.ClientSecret);
        }

        foreach (string key in scenario.ClientAuthorized)
        {
            clientOptions.AuthorizedKeys.Add(OssuaryPublicKey.Parse(key));
        }

        _client = new Side("client", 0, new OssuarySession(clientOptions, draws), clientOptions.Identity, scenario.ClientMessages, scenario.Tofu, scenario.ClientDisconnect, scenario.ServerMessages.Length);

        var serverOptions = new OssuarySessionOptions
        {
            Role = scenario.AuthenticatedServer ? OssuaryRole.AuthenticatedServer : OssuaryRole.UnauthenticatedServer,
            TimeProvider = time,
            RefuseUnauthorizedClientsAtOnce = refuseAtOnce,
        };
        if (scenario.ServerSecret is not null)
        {
            serverOptions.Identity = OssuaryIdentity.FromSeed(scenario.ServerSecret);
        }

        foreach (string key in scenario.ServerAuthorized)
        {
            serverOptions.AuthorizedKeys.Add(OssuaryPublicKey.Parse(key));
        }

        _server = new Side("server", 1, new OssuarySession(serverOptions, draws), serverOptions.Identity, scenario.ServerMessages, tofu: false, disconnect: false, expect: 0);
    }

    public IReadOnlyList<string> Lines => _lines;

    public IReadOnlyList<Marker> Markers => _markers;

    public OssuarySession Client => _client.Session;

    public OssuarySession Server => _server.Session;

    /// <summary>Runs the loop to the end; an exception of our session propagates (the caller reports it as a difference).</summary>
    public OurLockstepPair Run()
    {
        try
        {
            var c2s = new Wire();
            var s2c = new Wire();
            int idle = 0;
            for (int round = 0; round < MaxRounds; round++)
            {
                _lines.Add(string.Create(CultureInfo.InvariantCulture, $"ROUND {round}"));
                bool p1 = Step(_client, s2c, c2s);
                bool p2 = Step(_server, c2s, s2c);
                if (p1 || p2)
                {
                    idle = 0;
                }
                else if (++idle >= 3)
                {
                    break;
                }
            }

            _lines.Add($"END client={Status(_client)} server={Status(_server)}");
            return this;
        }
        finally
        {
            _client.Dispose();
            _server.Dispose();
        }
    }

    private bool Step(Side s, Wire inbox, Wire outbox)
    {
        if (s.Terminal is not null)
        {
            return false;
        }

        bool progress = false;
        OssuarySession session = s.Session;
        int done = HandshakeDone(s);
        if (done == 0)
        {
            var output = new ArrayBufferWriter<byte>();
            int written = session.WriteHandshake(output);
            Event(s, $"send_handshake Ok({written})");
            if (written > 0)
            {
                Emit(s, output.WrittenSpan.ToArray(), outbox);
                progress = true;
            }

            if (session.IsEstablished || session.State == OssuarySessionState.Closed)
            {
                // 0.5's recv_handshake returns Ok(0) without reading once Encrypted or Failed.
                Event(s, "recv_handshake Ok(0)");
                return true;
            }

            byte[] packet = inbox.NextPacket();
            OssuaryReceiveResult result = Receive(s, packet, out int consumed, out _);
            inbox.Consume(consumed);
            switch (result.Status)
            {
                case OssuaryReceiveStatus.NeedMoreData:
                    break;
                case OssuaryReceiveStatus.Handshake or OssuaryReceiveStatus.UntrustedServer:
                    Event(s, $"recv_handshake Ok({consumed})");
                    progress = true;
                    break;
                case OssuaryReceiveStatus.Reset or OssuaryReceiveStatus.Closed:
                    Event(s, $"recv_handshake Err({result.Reason})");
                    progress = true;
                    break;
                default:
                    throw new InvalidOperationException($"{s.Name}: Receive returned {result} during the handshake.");
            }
        }
        else if (done == 1)
        {
            if (!s.EstablishedLogged)
            {
                s.EstablishedLogged = true;
                Event(s, $"established remote_key={session.RemotePublicKey?.ToString() ?? "none"}");
            }

            byte[] packet = inbox.NextPacket();
            if (packet.Length > 0)
            {
                OssuaryReceiveResult result = Receive(s, packet, out int consumed, out byte[] plaintext);
                inbox.Consume(consumed);
                switch (result.Status)
                {
                    case OssuaryReceiveStatus.Data:
                        Event(s, $"recv_data Ok(({consumed}, {plaintext.Length})) plaintext={Convert.ToHexStringLower(plaintext)}");
                        s.Received++;
                        progress = true;
                        break;
                    case OssuaryReceiveStatus.Handshake:
                        Event(s, $"recv_data Ok(({consumed}, 0)) plaintext=");
                        progress = true;
                        break;
                    case OssuaryReceiveStatus.Reset or OssuaryReceiveStatus.Closed:
                        Event(s, $"recv_data Err({result.Reason})");
                        progress = true;
                        break;
                    case OssuaryReceiveStatus.NeedMoreData:
                        break;
                    default:
                        throw new InvalidOperationException($"{s.Name}: Receive returned {result} while established.");
                }
            }

            if (session.IsEstablished)
            {
                if (s.NextMessage < s.Messages.Length)
                {
                    var output = new ArrayBufferWriter<byte>();
                    int written = session.WriteData(s.Messages[s.NextMessage++], output);
                    Event(s, $"send_data Ok({written})");
                    Emit(s, output.WrittenSpan.ToArray(), outbox);
                    progress = true;
                }
                else if (s.Disconnect && !s.Disconnected && s.Received >= s.Expect)
                {
                    Event(s, "disconnect(false)");
                    session.Disconnect(error: false);
                    s.Disconnected = true;
                    progress = true;
                }
            }
        }
        else if (done == -65)
        {
            OssuaryPublicKey key = session.RemotePublicKey!;
            Event(s, $"handshake_done UntrustedServer({key})");
            if (s.Tofu)
            {
                session.AddAuthorizedKey(key);
                progress = true;
            }
            else
            {
                s.Terminal = $"untrusted server {key}";
            }
        }
        else
        {
            Event(s, $"handshake_done Err({session.LastError})");
            s.Terminal = $"Err({session.LastError})";
        }

        return progress;
    }

    /// <summary>0.5's handshake_done: 1 established, -65 once per untrusted-server pause, -1 failed, else 0.</summary>
    private static int HandshakeDone(Side s)
    {
        OssuarySessionState state = s.Session.State;
        if (state != OssuarySessionState.AwaitingTrust)
        {
            s.RaisedUntrusted = false;
        }

        switch (state)
        {
            case OssuarySessionState.Established:
                return 1;
            case OssuarySessionState.Closed:
                return -1;
            case OssuarySessionState.AwaitingTrust when !s.RaisedUntrusted:
                s.RaisedUntrusted = true;
                return -65;
            default:
                return 0;
        }
    }

    private OssuaryReceiveResult Receive(Side s, byte[] packet, out int consumed, out byte[] plaintext)
    {
        OssuarySessionState before = s.Session.State;
        var output = new ArrayBufferWriter<byte>();
        var input = new ReadOnlySequence<byte>(packet);
        OssuaryReceiveResult result = s.Session.Receive(input, output, out SequencePosition end, out _);
        consumed = (int)input.GetOffset(end);
        plaintext = output.WrittenSpan.ToArray();
        ushort type = packet.Length >= 8 ? (ushort)((packet[4] << 8) | packet[5]) : (ushort)0;
        if (result.Status == OssuaryReceiveStatus.Closed && before is not (OssuarySessionState.Closing or OssuarySessionState.Closed)
            && ((type == 0x10 && before != OssuarySessionState.Established) || result.Reason == OssuaryErrorReason.OversizedPacket))
        {
            // The original ends a connection through its reset, which draws fresh session material
            // (a 32-byte secret, a 12-byte nonce) from the generator both sides share; our session
            // just closes. Drawing the same bytes here keeps the peer's later draws (a reset of its
            // own, after this side is gone) on the original's.
            _draws.Fill(new byte[32]);
            _draws.Fill(new byte[12]);
        }

        if (type == 0x10 && before == OssuarySessionState.Established && result.Status == OssuaryReceiveStatus.Closed)
        {
            _markers.Add(new Marker(_lines.Count, s.Name, KnownDifferences.EstablishedDisconnectIsFinal));
        }
        else if (type == 0x10 && packet.Length < 12 && before is not (OssuarySessionState.Closing or OssuarySessionState.Closed)
            && result is { Status: OssuaryReceiveStatus.Closed, Reason: OssuaryErrorReason.ConnectionFailed })
        {
            _markers.Add(new Marker(_lines.Count, s.Name, KnownDifferences.ShortDisconnectFails));
        }
        else if (type is 0x01 or 0x02 or 0x03 && result is { Status: OssuaryReceiveStatus.Reset, Reason: OssuaryErrorReason.UnexpectedPacketSize }
            && IsPaddedHandshake(packet, type))
        {
            _markers.Add(new Marker(_lines.Count, s.Name, KnownDifferences.HandshakePaddingRefused));
        }
        else if (type == 0x20 && before == OssuarySessionState.Established && result.Status == OssuaryReceiveStatus.Reset
            && packet.Length >= 12 && (packet[10] | (packet[11] << 8)) != 16 && 8 + 4 + (packet[8] | (packet[9] << 8)) + 16 == packet.Length)
        {
            _markers.Add(new Marker(_lines.Count, s.Name, KnownDifferences.DataTagLengthChecked));
        }
        else if (type == 0x11 && before is not (OssuarySessionState.Closing or OssuarySessionState.Closed) && result.Status == OssuaryReceiveStatus.Closed)
        {
            _markers.Add(new Marker(_lines.Count, s.Name, KnownDifferences.PeerStartedFifthResetFails));
        }

        return result;
    }

    /// <summary>A handshake packet whose body runs past its fixed size, version and own <c>len</c> field right: the original reads it.</summary>
    private static bool IsPaddedHandshake(byte[] packet, ushort type)
    {
        int size = type switch
        {
            0x01 => 84,
            0x02 => 200,
            _ => 124,
        };
        return packet.Length > 8 + size && packet[10] == 1 && (packet[8] | (packet[9] << 8)) == size;
    }

    private void Emit(Side s, byte[] packet, Wire outbox)
    {
        _lines.Add($"PKT {s.Name} {Convert.ToHexStringLower(packet)}");
        s.Sent.Add(packet);
        var copy = new List<byte>(packet);
        bool dropped = false;
        foreach (Fault f in _scenario.Faults.Where(f => f.Side == s.Name && f.Index == s.Written && packet.Length > 0))
        {
            switch (f.Kind)
            {
                case FaultKind.Corrupt:
                    int at = f.Offset % packet.Length;
                    if (at < 2)
                    {
                        copy[0] |= 0x80;
                    }
                    else
                    {
                        copy[at] ^= (byte)f.Xor;
                    }

                    break;
                case FaultKind.Extend when copy.Count >= 8:
                    copy.AddRange(Enumerable.Repeat((byte)0xa5, f.Offset));
                    int length = ((copy[0] << 8) | copy[1]) + f.Offset;
                    copy[0] = (byte)(length >> 8);
                    copy[1] = (byte)length;
                    break;
                case FaultKind.Truncate when copy.Count >= 8 && f.Offset < copy.Count - 8:
                    copy.RemoveRange(8 + f.Offset, copy.Count - 8 - f.Offset);
                    copy[0] = (byte)(f.Offset >> 8);
                    copy[1] = (byte)f.Offset;
                    break;
                case FaultKind.Drop:
                    dropped = true;
                    break;
            }
        }

        if (!dropped)
        {
            outbox.Push([.. copy]);
        }

        foreach (Fault f in _scenario.Faults.Where(f => f.Side == s.Name && f.Index == s.Written))
        {
            switch (f.Kind)
            {
                case FaultKind.InjectReset or FaultKind.InjectCleanDisconnect or FaultKind.InjectErrorDisconnect:
                    outbox.Push(ControlPacket(f.Kind == FaultKind.InjectReset ? (byte)0x11 : (byte)0x10, f.Kind is FaultKind.InjectErrorDisconnect or FaultKind.InjectReset));
                    break;
                case FaultKind.InjectHex:
                    outbox.Push(Convert.FromHexString(f.Hex));
                    break;
                case FaultKind.Replay when f.Offset <= s.Written:
                    outbox.Push(s.Sent[f.Offset]);
                    break;
            }
        }

        s.Written++;
    }

    /// <summary>A Reset or Disconnect as the oracle injects it: msg_id 0, body len 4, the error flag.</summary>
    internal static byte[] ControlPacket(byte type, bool error) => [0, 4, 0, 0, 0, type, 0, 0, 4, 0, error ? (byte)1 : (byte)0, 0];

    private void Event(Side s, string text) => _lines.Add($"EVT {s.Name} {text}");

    private static string Status(Side s)
    {
        if (s.Terminal is not null)
        {
            return s.Terminal;
        }

        return s.Session.State switch
        {
            OssuarySessionState.Established => "Ok(true)",
            OssuarySessionState.Closed => $"Err({s.Session.LastError})",
            _ => "Ok(false)",
        };
    }

    /// <summary>Bytes on their way to one side; a receive call gets the next whole packet, as framed by its header.</summary>
    private sealed class Wire
    {
        private readonly List<byte> _bytes = [];

        public void Push(byte[] packet) => _bytes.AddRange(packet);

        public byte[] NextPacket()
        {
            int avail = _bytes.Count;
            if (avail < 8)
            {
                return [.. _bytes];
            }

            int want = 8 + ((_bytes[0] << 8) | _bytes[1]);
            return [.. _bytes.GetRange(0, Math.Min(want, avail))];
        }

        public void Consume(int count) => _bytes.RemoveRange(0, count);
    }

    private sealed class Side(string name, int index, OssuarySession session, OssuaryIdentity? identity, byte[][] messages, bool tofu, bool disconnect, int expect) : IDisposable
    {
        public string Name { get; } = name;

        public int Index { get; } = index;

        public OssuarySession Session { get; } = session;

        public byte[][] Messages { get; } = messages;

        public bool Tofu { get; } = tofu;

        public bool Disconnect { get; } = disconnect;

        public int Expect { get; } = expect;

        public int NextMessage { get; set; }

        public int Received { get; set; }

        public int Written { get; set; }

        /// <summary>The packets written so far, as written (before their faults), for <see cref="FaultKind.Replay"/>.</summary>
        public List<byte[]> Sent { get; } = [];

        public bool Disconnected { get; set; }

        public bool EstablishedLogged { get; set; }

        public bool RaisedUntrusted { get; set; }

        public string? Terminal { get; set; }

        public void Dispose()
        {
            Session.Dispose();
            identity?.Dispose();
        }
    }
}
