using System.Buffers;
using BenchmarkDotNet.Attributes;
using Ossuary.Pipelines.Benchmarks.Support;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Benchmarks;

/// <summary>
/// The sans-IO core's steady-state record path, one EncryptedData packet per operation:
/// <see cref="OssuarySession.WriteData(ReadOnlySpan{byte}, IBufferWriter{byte})"/> (Seal) and
/// <see cref="OssuarySession.Receive"/> of a data packet (Open), both into reusable fixed buffers.
/// </summary>
/// <remarks>
/// Seal can run forever on one session (the message id wraps, the 96-bit nonce does not), so it
/// uses an ordinary invocation count. Open cannot: the receiver accepts only the next message id
/// and nonce, so a packet opens once. Each iteration therefore gets a fresh established pair and
/// <see cref="PacketRun.PacketsPerIteration"/> packets sealed by it in <c>[IterationSetup]</c>
/// (excluded from time and from allocations), and the benchmark opens all of them in order
/// (<c>OperationsPerInvoke</c> divides by the count; BenchmarkDotNet forces InvocationCount=1
/// with an iteration setup).
/// </remarks>
[MemoryDiagnoser]
public class SessionRecordBenchmarks
{
    private InMemorySessions _sessions = null!;
    private OssuarySession _sealClient = null!;
    private OssuarySession _sealServer = null!;
    private byte[] _plaintext = [];
    private FixedBufferWriter _packetOut = null!;
    private PacketRun _open = null!;

    [Params(64, 1024, 16384)]
    public int PlaintextSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _sessions = new InMemorySessions();
        (_sealClient, _sealServer) = _sessions.CreateEstablished();
        _plaintext = new byte[PlaintextSize];
        Random.Shared.NextBytes(_plaintext);
        _packetOut = new FixedBufferWriter(PlaintextSize + OssuarySession.DataPacketOverhead);
        _open = new PacketRun(_sessions, PlaintextSize, segmentSize: null);
        _open.VerifyAndWarmUp();

        // Check that what Seal writes is a packet the peer opens to the same plaintext.
        Seal();
        var opened = new FixedBufferWriter(PlaintextSize);
        OssuaryReceiveResult result = _sealServer.Receive(new ReadOnlySequence<byte>(_packetOut.WrittenMemory), opened, out _, out _);
        if (result.Status != OssuaryReceiveStatus.Data || !opened.WrittenSpan.SequenceEqual(_plaintext))
        {
            throw new InvalidOperationException($"The sealed packet did not open: {result}.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _open.Dispose();
        _sealClient.Dispose();
        _sealServer.Dispose();
        _sessions.Dispose();
    }

    [Benchmark]
    public int Seal()
    {
        _packetOut.Reset();
        return _sealClient.WriteData(_plaintext, _packetOut);
    }

    [IterationSetup(Target = nameof(Open))]
    public void PrepareOpen() => _open.Prepare();

    [Benchmark(OperationsPerInvoke = PacketRun.PacketsPerIteration)]
    public int Open() => _open.OpenAll();
}

/// <summary>
/// Open over a packet split across 4 KiB segments, as Kestrel's memory pool delivers it: each
/// 16,412-byte packet spans 5 or 6 segments and rarely starts at a segment boundary, so the core
/// takes its copy-then-decrypt-in-place path. Same method as <see cref="SessionRecordBenchmarks.Open"/>.
/// </summary>
[MemoryDiagnoser]
public class SessionRecordMultiSegmentBenchmarks
{
    private InMemorySessions _sessions = null!;
    private PacketRun _open = null!;

    [Params(16384)]
    public int PlaintextSize { get; set; }

    [Params(4096)]
    public int SegmentSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _sessions = new InMemorySessions();
        _open = new PacketRun(_sessions, PlaintextSize, SegmentSize);
        if (!_open.IsMultiSegment)
        {
            throw new InvalidOperationException("The packets fit in one segment; nothing multi-segment would be measured.");
        }

        _open.VerifyAndWarmUp();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _open.Dispose();
        _sessions.Dispose();
    }

    [IterationSetup(Target = nameof(OpenMultiSegment))]
    public void PrepareOpen() => _open.Prepare();

    [Benchmark(OperationsPerInvoke = PacketRun.PacketsPerIteration)]
    public int OpenMultiSegment() => _open.OpenAll();
}

/// <summary>
/// One iteration's worth of packets for Open: a fresh established pair and
/// <see cref="PacketsPerIteration"/> packets sealed by its client, back to back in one buffer
/// (a stream), each viewed as its own sequence (contiguous, or cut into segments of the stream).
/// The buffer and the sequences are made once; <see cref="Prepare"/> only rewrites the bytes.
/// </summary>
/// <remarks>
/// 512 packets keep the largest run (512 × 16,412 B ≈ 8 MiB) inside this machine's 32 MiB L3,
/// as a packet just received from a socket would be; 2,048 (≈ 33 MiB) measured about 8% slower
/// at 16 KiB, from memory traffic rather than from the protocol.
/// </remarks>
internal sealed class PacketRun : IDisposable
{
    public const int PacketsPerIteration = 512;

    private readonly InMemorySessions _sessions;
    private readonly int _plaintextSize;
    private readonly byte[] _plaintext;
    private readonly byte[] _stream;
    private readonly ReadOnlySequence<byte>[] _packets = new ReadOnlySequence<byte>[PacketsPerIteration];
    private readonly FixedBufferWriter _plaintextOut;
    private OssuarySession? _sender;
    private OssuarySession? _receiver;

    public PacketRun(InMemorySessions sessions, int plaintextSize, int? segmentSize)
    {
        _sessions = sessions;
        _plaintextSize = plaintextSize;
        _plaintext = new byte[plaintextSize];
        Random.Shared.NextBytes(_plaintext);
        _plaintextOut = new FixedBufferWriter(plaintextSize);
        int packetLength = plaintextSize + OssuarySession.DataPacketOverhead;
        _stream = new byte[PacketsPerIteration * packetLength];
        ReadOnlySequence<byte> all = segmentSize is int size
            ? SegmentChain.Split(_stream, size)
            : new ReadOnlySequence<byte>(_stream);
        for (int i = 0; i < PacketsPerIteration; i++)
        {
            _packets[i] = all.Slice((long)i * packetLength, packetLength);
        }

        IsMultiSegment = !_packets[0].IsSingleSegment || !_packets[1].IsSingleSegment;
    }

    public bool IsMultiSegment { get; }

    public void Prepare()
    {
        _sender?.Dispose();
        _receiver?.Dispose();
        (_sender, _receiver) = _sessions.CreateEstablished();
        var writer = new FixedBufferWriter(_stream);
        for (int i = 0; i < PacketsPerIteration; i++)
        {
            _sender.WriteData(_plaintext, writer);
        }
    }

    /// <summary>
    /// Checks the bytes that come out, then runs the path until tiered compilation has settled.
    /// With InvocationCount=1, BenchmarkDotNet's own warm-up lasts a few milliseconds, shorter than
    /// the runtime's 100 ms call-counting delay, so without this the measured iterations ran
    /// tier-0 or instrumented code (Open read about 0.3-0.5 µs slower than it is once optimized).
    /// </summary>
    public void VerifyAndWarmUp()
    {
        Prepare();
        OpenAll();
        if (!_plaintextOut.WrittenSpan.SequenceEqual(_plaintext))
        {
            throw new InvalidOperationException("The opened plaintext differs from what was sealed.");
        }

        for (int pass = 0; pass < 3; pass++)
        {
            for (int run = 0; run < 20; run++)
            {
                Prepare();
                OpenAll();
            }

            Thread.Sleep(250); // the call-counting delay, then the background tier-1 compile
        }
    }

    public int OpenAll()
    {
        OssuarySession receiver = _receiver!;
        int total = 0;
        for (int i = 0; i < _packets.Length; i++)
        {
            _plaintextOut.Reset();
            OssuaryReceiveResult result = receiver.Receive(_packets[i], _plaintextOut, out _, out _);
            if (result.Status != OssuaryReceiveStatus.Data || result.PlaintextLength != _plaintextSize)
            {
                throw new InvalidOperationException($"Packet {i} did not open: {result}.");
            }

            total += result.PlaintextLength;
        }

        return total;
    }

    public void Dispose()
    {
        _sender?.Dispose();
        _receiver?.Dispose();
    }
}
