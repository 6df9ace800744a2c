using System.Buffers;
using BenchmarkDotNet.Attributes;
using Ossuary.Pipelines.Benchmarks.Support;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Benchmarks;

/// <summary>
/// CPU and allocations of one in-memory Ossuary handshake (ClientHandshake, ServerHandshake,
/// ClientAuthentication), client with an identity and an unauthenticated server, so both sides
/// do one X25519 key generation, one X25519 agreement, one Ed25519 signature and one Ed25519
/// verification, and create their two ChaCha20-Poly1305 contexts. Each operation creates,
/// handshakes and disposes fresh sessions; the long-term identities are made once.
/// </summary>
/// <remarks>
/// <c>BothSides</c> uses secure randomness, as production does. The per-side benchmarks replay
/// one side against a recorded transcript of the other: the side under test is created with
/// seeded randomness (<see cref="SeededRandomSource"/>), so it draws the same ephemeral key,
/// nonce and challenge as when the transcript was recorded, and the recorded peer packets
/// still verify. Only that side's work is measured.
/// </remarks>
[MemoryDiagnoser]
public class HandshakeBenchmarks
{
    private const ulong ClientSeed = 0x0C11E47;
    private const ulong ServerSeed = 0x5E4BE4;

    private InMemorySessions _sessions = null!;
    private OssuarySessionOptions _clientOptions = null!;
    private OssuarySessionOptions _serverOptions = null!;
    private readonly SeededRandomSource _random = new(0);
    private readonly FixedBufferWriter _out = new(HandshakeBody.MaxPacketSize);
    private readonly FixedBufferWriter _ignored = new(1);
    private ReadOnlySequence<byte> _clientHandshake;
    private ReadOnlySequence<byte> _serverHandshake;
    private ReadOnlySequence<byte> _clientAuthentication;

    [GlobalSetup]
    public void Setup()
    {
        _sessions = new InMemorySessions();
        _clientOptions = _sessions.ClientOptions();
        _serverOptions = _sessions.ServerOptions();

        var transcript = new List<byte[]>();
        using (var client = new OssuarySession(_clientOptions, new SeededRandomSource(ClientSeed)))
        using (var server = new OssuarySession(_serverOptions, new SeededRandomSource(ServerSeed)))
        {
            _sessions.Handshake(client, server, transcript);
        }

        if (transcript.Count != 3)
        {
            throw new InvalidOperationException($"Expected 3 handshake packets, recorded {transcript.Count}.");
        }

        _clientHandshake = new ReadOnlySequence<byte>(transcript[0]);
        _serverHandshake = new ReadOnlySequence<byte>(transcript[1]);
        _clientAuthentication = new ReadOnlySequence<byte>(transcript[2]);

        // The replays must write exactly what was recorded, or they are not the same handshake.
        ClientSide();
        ServerSide();
        BothSides();
    }

    [GlobalCleanup]
    public void Cleanup() => _sessions.Dispose();

    /// <summary>A complete handshake, both sides, fresh secure randomness.</summary>
    [Benchmark(Baseline = true)]
    public bool BothSides()
    {
        (OssuarySession client, OssuarySession server) = _sessions.CreateEstablished();
        client.Dispose();
        server.Dispose();
        return true;
    }

    /// <summary>The client alone: write ClientHandshake, read ServerHandshake, write ClientAuthentication.</summary>
    [Benchmark]
    public bool ClientSide()
    {
        _random.Reset(ClientSeed);
        using var client = new OssuarySession(_clientOptions, _random);
        _out.Reset();
        client.WriteHandshake(_out);
        Expect(_clientHandshake);
        Receive(client, _serverHandshake);
        _out.Reset();
        client.WriteHandshake(_out);
        Expect(_clientAuthentication);
        if (!client.IsEstablished)
        {
            throw new InvalidOperationException($"The client ended {client.State}.");
        }

        return true;
    }

    /// <summary>The server alone: read ClientHandshake, write ServerHandshake, read ClientAuthentication.</summary>
    [Benchmark]
    public bool ServerSide()
    {
        _random.Reset(ServerSeed);
        using var server = new OssuarySession(_serverOptions, _random);
        Receive(server, _clientHandshake);
        _out.Reset();
        server.WriteHandshake(_out);
        Expect(_serverHandshake);
        Receive(server, _clientAuthentication);
        if (!server.IsEstablished)
        {
            throw new InvalidOperationException($"The server ended {server.State}.");
        }

        return true;
    }

    private void Receive(OssuarySession session, in ReadOnlySequence<byte> packet)
    {
        OssuaryReceiveResult result = session.Receive(packet, _ignored, out _, out _);
        if (result.Status != OssuaryReceiveStatus.Handshake)
        {
            throw new InvalidOperationException($"Unexpected handshake result {result}.");
        }
    }

    private void Expect(in ReadOnlySequence<byte> recorded)
    {
        if (!recorded.FirstSpan.SequenceEqual(_out.WrittenSpan))
        {
            throw new InvalidOperationException("The replayed side wrote a different packet than the recorded one.");
        }
    }
}
