using System.Buffers;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Moves packets between two in-memory sessions, one packet at a time, and records what each side saw.</summary>
internal sealed class SessionPump(OssuarySession client, OssuarySession server)
{
    public OssuarySession Client { get; } = client;

    public OssuarySession Server { get; } = server;

    public List<byte[]> ClientReceived { get; } = [];

    public List<byte[]> ServerReceived { get; } = [];

    public List<OssuaryReceiveResult> ClientResults { get; } = [];

    public List<OssuaryReceiveResult> ServerResults { get; } = [];

    /// <summary>Every packet the pump moved (handshake, control and data), in order, with its sender.</summary>
    public List<(OssuarySession From, byte[] Packet)> Wire { get; } = [];

    /// <summary>Runs both sides until neither has anything left to write or read. Returns the number of packets moved.</summary>
    public int Run(int maxPackets = 1000)
    {
        int moved = 0;
        while (moved < maxPackets)
        {
            int step = Flush(Client, Server, ServerReceived, ServerResults) + Flush(Server, Client, ClientReceived, ClientResults);
            if (step == 0)
            {
                return moved;
            }

            moved += step;
        }

        throw new InvalidOperationException("The sessions kept talking past the packet limit.");
    }

    public void Send(OssuarySession from, ReadOnlySpan<byte> message)
    {
        var packet = new ArrayBufferWriter<byte>();
        from.WriteData(message, packet);
        Wire.Add((from, packet.WrittenSpan.ToArray()));
        Deliver(packet.WrittenMemory, Peer(from));
    }

    public OssuarySession Peer(OssuarySession side) => ReferenceEquals(side, Client) ? Server : Client;

    /// <summary>Hands one packet's bytes to <paramref name="to"/> and records the result.</summary>
    public OssuaryReceiveResult Deliver(ReadOnlyMemory<byte> packet, OssuarySession to)
    {
        var plaintext = new ArrayBufferWriter<byte>();
        var input = new ReadOnlySequence<byte>(packet);
        OssuaryReceiveResult result = to.Receive(input, plaintext, out SequencePosition consumed, out _);
        if (ReferenceEquals(to, Client))
        {
            ClientResults.Add(result);
            if (result.Status == OssuaryReceiveStatus.Data)
            {
                ClientReceived.Add(plaintext.WrittenSpan.ToArray());
            }
        }
        else
        {
            ServerResults.Add(result);
            if (result.Status == OssuaryReceiveStatus.Data)
            {
                ServerReceived.Add(plaintext.WrittenSpan.ToArray());
            }
        }

        return result;
    }

    private int Flush(OssuarySession from, OssuarySession to, List<byte[]> received, List<OssuaryReceiveResult> results)
    {
        int count = 0;
        var packet = new ArrayBufferWriter<byte>();
        while (from.WriteHandshake(packet) > 0)
        {
            Wire.Add((from, packet.WrittenSpan.ToArray()));
            Deliver(packet.WrittenMemory, to);
            packet.Clear();
            count++;
        }

        return count;
    }
}
