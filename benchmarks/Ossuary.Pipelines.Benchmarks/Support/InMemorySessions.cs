using System.Buffers;
using Ossuary.Pipelines.Crypto;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Benchmarks.Support;

/// <summary>
/// Establishes a client and an unauthenticated server session in memory by moving each
/// handshake packet from one to the other (the pattern of the tests' SessionPump, without
/// referencing the test project). The client has an identity, so both sides sign and verify.
/// </summary>
internal sealed class InMemorySessions : IDisposable
{
    private readonly FixedBufferWriter _packet = new(HandshakeBody.MaxPacketSize);
    private readonly FixedBufferWriter _ignored = new(1);

    public InMemorySessions()
    {
        ServerIdentity = OssuaryIdentity.Generate();
        ClientIdentity = OssuaryIdentity.Generate();
    }

    public OssuaryIdentity ServerIdentity { get; }

    public OssuaryIdentity ClientIdentity { get; }

    public OssuarySessionOptions ClientOptions()
    {
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = ClientIdentity };
        options.AuthorizedKeys.Add(ServerIdentity.PublicKey);
        return options;
    }

    public OssuarySessionOptions ServerOptions() =>
        new() { Role = OssuaryRole.UnauthenticatedServer, Identity = ServerIdentity };

    /// <summary>A fresh, established pair (secure randomness, as in production).</summary>
    public (OssuarySession Client, OssuarySession Server) CreateEstablished()
    {
        var client = new OssuarySession(ClientOptions());
        var server = new OssuarySession(ServerOptions());
        Handshake(client, server);
        return (client, server);
    }

    /// <summary>Runs the handshake to completion: ClientHandshake, ServerHandshake, ClientAuthentication.</summary>
    public void Handshake(OssuarySession client, OssuarySession server, List<byte[]>? transcript = null)
    {
        for (int round = 0; !(client.IsEstablished && server.IsEstablished); round++)
        {
            if (round == 4)
            {
                throw new InvalidOperationException($"The handshake did not complete: client {client.State}, server {server.State}.");
            }

            Move(client, server, transcript);
            Move(server, client, transcript);
        }
    }

    private void Move(OssuarySession from, OssuarySession to, List<byte[]>? transcript)
    {
        while (true)
        {
            _packet.Reset();
            if (from.WriteHandshake(_packet) == 0)
            {
                return;
            }

            transcript?.Add(_packet.WrittenSpan.ToArray());
            OssuaryReceiveResult result = to.Receive(new ReadOnlySequence<byte>(_packet.WrittenMemory), _ignored, out _, out _);
            if (result.Status != OssuaryReceiveStatus.Handshake)
            {
                throw new InvalidOperationException($"Unexpected handshake result {result}.");
            }
        }
    }

    public void Dispose()
    {
        ServerIdentity.Dispose();
        ClientIdentity.Dispose();
    }
}

/// <summary>
/// Replayable randomness (SplitMix64) for the per-side handshake benchmarks: a session created
/// with the same seed draws the same challenge, ephemeral key and nonce, so a recorded peer
/// transcript stays valid for it. Never use outside benchmarks.
/// </summary>
internal sealed class SeededRandomSource(ulong seed) : RandomSource
{
    private ulong _state = seed;

    public void Reset(ulong seed) => _state = seed;

    public override void Fill(Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            int n = Math.Min(8, destination.Length);
            for (int i = 0; i < n; i++)
            {
                destination[i] = (byte)(z >> (8 * i));
            }

            destination = destination[n..];
        }
    }
}
