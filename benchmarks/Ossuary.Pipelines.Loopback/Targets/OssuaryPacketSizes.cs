using System.Buffers;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// The sizes of the packets one <c>ossuary</c> bench connection puts on the wire, taken from a real
/// handshake between two in-memory sessions with the bench's keys (so they follow the protocol if it changes).
/// </summary>
/// <param name="ClientHandshake">The client's first packet.</param>
/// <param name="ServerHandshake">The server's answer.</param>
/// <param name="ClientAuthentication">The client's last handshake packet.</param>
/// <param name="Data">A data packet carrying one byte (the bench's ping and pong).</param>
/// <param name="Farewell">Disconnect, and the Reset a server answers it with: both are a header and a 4-byte body.</param>
internal sealed record OssuaryPacketSizes(int ClientHandshake, int ServerHandshake, int ClientAuthentication, int Data, int Farewell)
{
    public static OssuaryPacketSizes Measure(OssuaryKeys keys)
    {
        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        clientOptions.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var client = new OssuarySession(clientOptions);
        using var server = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer, Identity = keys.Server });
        int clientHandshake = Deliver(client, server);
        int serverHandshake = Deliver(server, client);
        int clientAuthentication = Deliver(client, server);
        if (!client.IsEstablished || !server.IsEstablished)
        {
            throw new InvalidOperationException($"the in-memory handshake did not finish (client {client.State}, server {server.State})");
        }

        var wire = new ArrayBufferWriter<byte>();
        client.WriteData("P"u8, wire);
        int data = wire.WrittenCount;
        wire.ResetWrittenCount();
        client.Disconnect(error: false);
        while (client.WriteHandshake(wire) > 0)
        {
        }

        return new OssuaryPacketSizes(clientHandshake, serverHandshake, clientAuthentication, data, wire.WrittenCount);
    }

    /// <summary>Moves what <paramref name="from"/> has to send into <paramref name="to"/>; returns its size.</summary>
    private static int Deliver(OssuarySession from, OssuarySession to)
    {
        var wire = new ArrayBufferWriter<byte>();
        while (from.WriteHandshake(wire) > 0)
        {
        }

        var packets = new ReadOnlySequence<byte>(wire.WrittenMemory);
        var ignored = new ArrayBufferWriter<byte>(1);
        while (!packets.IsEmpty)
        {
            to.Receive(packets, ignored, out SequencePosition consumed, out _);
            packets = packets.Slice(consumed);
        }

        return wire.WrittenCount;
    }
}
