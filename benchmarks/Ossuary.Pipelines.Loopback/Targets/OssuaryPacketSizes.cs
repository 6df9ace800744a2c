using System.Buffers;
using Ossuary.Pipelines.Loopback.Measurements;
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
        using var client = new OssuarySession(keys.ClientSessionOptions());
        using var server = new OssuarySession(keys.ServerSessionOptions());
        var wire = new ArrayBufferWriter<byte>();
        var ignored = new ArrayBufferWriter<byte>(1);
        int clientHandshake = InMemoryWire.Deliver(client, server, wire, ignored);
        int serverHandshake = InMemoryWire.Deliver(server, client, wire, ignored);
        int clientAuthentication = InMemoryWire.Deliver(client, server, wire, ignored);
        if (!client.IsEstablished || !server.IsEstablished)
        {
            throw new InvalidOperationException($"the in-memory handshake did not finish (client {client.State}, server {server.State})");
        }

        wire.ResetWrittenCount();
        client.WriteData("P"u8, wire);
        int data = wire.WrittenCount;
        wire.ResetWrittenCount();
        client.Disconnect(error: false);
        while (client.WriteHandshake(wire) > 0)
        {
        }

        return new OssuaryPacketSizes(clientHandshake, serverHandshake, clientAuthentication, data, wire.WrittenCount);
    }
}
