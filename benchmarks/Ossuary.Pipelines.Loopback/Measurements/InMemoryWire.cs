using System.Buffers;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>Carries handshake packets between two <see cref="OssuarySession"/>s in memory: no sockets, no pipes.</summary>
internal static class InMemoryWire
{
    /// <summary>
    /// Moves every handshake packet <paramref name="from"/> has to send into <paramref name="to"/>
    /// through <paramref name="wire"/> (reset first) and returns how many bytes that was.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="to"/> reported anything but handshake progress.</exception>
    public static int Deliver(OssuarySession from, OssuarySession to, ArrayBufferWriter<byte> wire, IBufferWriter<byte> plaintext)
    {
        wire.ResetWrittenCount();
        while (from.WriteHandshake(wire) > 0)
        {
        }

        var packets = new ReadOnlySequence<byte>(wire.WrittenMemory);
        while (!packets.IsEmpty)
        {
            OssuaryReceiveResult result = to.Receive(packets, plaintext, out SequencePosition consumed, out _);
            if (result.Status is not OssuaryReceiveStatus.Handshake)
            {
                throw new InvalidOperationException($"the in-memory handshake failed: {result.Status} {result.Reason}");
            }

            packets = packets.Slice(consumed);
        }

        return wire.WrittenCount;
    }

    /// <summary>Runs the handshake between <paramref name="client"/> and <paramref name="server"/> until both are established.</summary>
    /// <exception cref="InvalidOperationException">It failed, or did not finish in the protocol's three packets.</exception>
    public static void Establish(OssuarySession client, OssuarySession server, ArrayBufferWriter<byte> wire, IBufferWriter<byte> plaintext)
    {
        for (int step = 0; !(client.IsEstablished && server.IsEstablished); step++)
        {
            if (step == 4)
            {
                throw new InvalidOperationException($"the in-memory handshake did not finish (client {client.State}, server {server.State})");
            }

            Deliver(client, server, wire, plaintext);
            Deliver(server, client, wire, plaintext);
        }
    }
}
