using System.Buffers;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Vectors;

/// <summary>
/// Replays a recorded session with one byte of one packet flipped. Each side's packets are the
/// bytes our session actually writes (equal to the recording until something goes wrong; the
/// produce tests prove that), delivered into a per-direction byte stream, so a damaged length
/// field desynchronises framing as it would on a socket. The recorded calls are followed until a
/// receive fails or the recording cannot continue (a send on a session that is no longer
/// established); then both sides run on their own, writing their Resets and re-handshakes,
/// until neither has anything to write or read.
/// </summary>
internal sealed class TamperReplayer
{
    private static readonly string[] Sides = ["client", "server"];
    private const int MaxFreeRounds = 200;

    private readonly TestVector _vector;
    private readonly Tamper? _tamper;
    private readonly Dictionary<string, OssuarySession> _sessions = [];
    private readonly Dictionary<string, TamperInbox> _inboxes = new() { ["client"] = new(), ["server"] = new() };
    private readonly List<WrittenPacket> _wire = [];
    private readonly TamperRun _run = new();
    private bool _following = true;

    private TamperReplayer(TestVector vector, IReadOnlyDictionary<string, OssuarySessionOptions> options, Tamper? tamper)
    {
        _vector = vector;
        _tamper = tamper;
        foreach (string side in Sides)
        {
            _sessions[side] = new OssuarySession(options[side], new ScriptedRandomSource(vector.DrawsOf(side)));
        }
    }

    /// <summary>Replays <paramref name="vector"/>; with no tamper this is the baseline the tampered runs are compared with.</summary>
    public static TamperRun Run(TestVector vector, IReadOnlyDictionary<string, OssuarySessionOptions> options, Tamper? tamper = null)
    {
        var replayer = new TamperReplayer(vector, options, tamper);
        try
        {
            return replayer.Run();
        }
        finally
        {
            foreach (OssuarySession session in replayer._sessions.Values)
            {
                session.Dispose();
            }
        }
    }

    private static string Peer(string side) => side == "client" ? "server" : "client";

    private TamperRun Run()
    {
        foreach (VectorEvent e in _vector.Events)
        {
            if (!_following)
            {
                break;
            }

            Follow(e);
        }

        // Whatever is on the wire still arrives.
        foreach (WrittenPacket packet in _wire.Where(p => !p.Delivered))
        {
            Deliver(packet);
        }

        RunFree();
        foreach (string side in Sides)
        {
            if (_inboxes[side].Length > 0 && _sessions[side].State is not (OssuarySessionState.Closing or OssuarySessionState.Closed))
            {
                _run.Truncated.Add(side);
            }
        }

        return _run;
    }

    private void Follow(VectorEvent e)
    {
        OssuarySession session = _sessions[e.Side];
        var output = new ArrayBufferWriter<byte>();
        switch (e.Call)
        {
            case "send_handshake":
                int written = session.WriteHandshake(output);
                if (written > 0)
                {
                    Put(e.Side, e.Packet, output.WrittenSpan);
                }

                // Our side wrote nothing where the original wrote a packet, or the reverse: the script no longer fits.
                _following = (written > 0) == (e.Packet is not null);
                break;
            case "send_data":
                VectorPacket recorded = _vector.Packet(e.Packet ?? throw new InvalidDataException(e.ToString()));
                byte[] plaintext = recorded.Plaintext ?? throw new InvalidDataException($"{_vector.Name}: packet {recorded.Index} has no plaintext");
                if (!session.IsEstablished)
                {
                    _following = false;
                    break;
                }

                session.WriteData(plaintext, output);
                _run.Sent[e.Side].Add(plaintext);
                Put(e.Side, recorded.Index, output.WrittenSpan);
                break;
            case "recv_handshake":
            case "recv_data":
                WrittenPacket? packet = _wire.FirstOrDefault(p => p.Index == e.Packet && !p.Delivered);
                if (packet is null)
                {
                    _following = false;
                    break;
                }

                Deliver(packet);
                Delivery delivery = ReceiveOnce(e.Side, logWaiting: true);

                // Keep following while our side does what the original did: accepted where it
                // accepted, or ended where it ended (vector d's Disconnect).
                _following = delivery.Status is OssuaryReceiveStatus.Handshake or OssuaryReceiveStatus.Data or OssuaryReceiveStatus.UntrustedServer
                    ? !e.IsError
                    : delivery.Status == OssuaryReceiveStatus.Closed && e.IsError;
                break;
            case "add_authorized_key":
                session.AddAuthorizedKey(RecordedKeyToTrust(e.Side));
                break;
            case "disconnect(false)":
                session.Disconnect(error: false);
                break;
            case "disconnect(true)":
                session.Disconnect(error: true);
                break;
            case "handshake_done":
                break;
            default:
                throw new InvalidDataException($"{_vector.Name}: {e}: unknown call.");
        }
    }

    private OssuaryPublicKey RecordedKeyToTrust(string side)
    {
        var raised = _vector.Side(side).GetProperty("untrusted_server_keys_raised");
        int count = raised.GetArrayLength();
        return count > 0
            ? OssuaryPublicKey.Parse(raised[count - 1].GetString()!)
            : throw new InvalidDataException($"{_vector.Name}: add_authorized_key without a recorded key.");
    }

    /// <summary>Puts a packet our side wrote on the wire, damaging it if it is the one to tamper with.</summary>
    private void Put(string from, int? index, ReadOnlySpan<byte> bytes)
    {
        byte[] packet = bytes.ToArray();
        if (_tamper is Tamper tamper && tamper.PacketIndex == index && tamper.Offset < packet.Length)
        {
            packet[tamper.Offset] ^= tamper.Mask;
        }

        _wire.Add(new WrittenPacket(from, index, packet));
    }

    private void Deliver(WrittenPacket packet)
    {
        string to = Peer(packet.From);
        if (packet.Index is int index)
        {
            _run.ReceiverStateOnArrival[index] = _sessions[to].State;
        }

        _inboxes[to].Append(packet.Bytes, packet.Index);
        packet.Delivered = true;
    }

    /// <summary>Both sides on their own: write whatever they have, read whatever arrived, until nothing moves.</summary>
    private void RunFree()
    {
        for (int round = 0; ; round++)
        {
            if (round == MaxFreeRounds)
            {
                throw new InvalidOperationException($"{_vector.Name} {_tamper}: the sessions were still talking after {MaxFreeRounds} rounds.");
            }

            bool moved = false;
            foreach (string side in Sides)
            {
                var output = new ArrayBufferWriter<byte>();
                while (_sessions[side].WriteHandshake(output) > 0)
                {
                    _inboxes[Peer(side)].Append(output.WrittenSpan.ToArray(), null);
                    output.Clear();
                    moved = true;
                }
            }

            foreach (string side in Sides)
            {
                while (_inboxes[side].Length > 0 && ReceiveOnce(side, logWaiting: false).Consumed > 0)
                {
                    moved = true;
                }
            }

            if (!moved)
            {
                return;
            }
        }
    }

    private Delivery ReceiveOnce(string side, bool logWaiting)
    {
        TamperInbox inbox = _inboxes[side];
        var plaintext = new ArrayBufferWriter<byte>();
        ReadOnlySequence<byte> input = inbox.Pending;
        OssuaryReceiveResult result = _sessions[side].Receive(input, plaintext, out SequencePosition consumed, out _);
        var delivery = new Delivery(side, inbox.FrontPacket, result.Status, result.Reason, input.GetOffset(consumed));
        if (result.Status == OssuaryReceiveStatus.Data)
        {
            _run.Received[side].Add(plaintext.WrittenSpan.ToArray());
        }

        // A call that reads nothing (a closed session, or one waiting for the rest of a packet) is
        // logged once per stream position, and after the script only when a recorded packet starts
        // there, so a baseline and a tampered run log the same calls.
        bool log = delivery.Consumed > 0;
        if (!log && inbox.MarkWaitLogged())
        {
            log = logWaiting || delivery.PacketIndex is not null;
        }

        if (log)
        {
            _run.Log.Add(delivery);
        }

        inbox.Consume((int)delivery.Consumed);
        return delivery;
    }

    private sealed class WrittenPacket(string from, int? index, byte[] bytes)
    {
        public string From { get; } = from;

        public int? Index { get; } = index;

        public byte[] Bytes { get; } = bytes;

        public bool Delivered { get; set; }
    }
}
