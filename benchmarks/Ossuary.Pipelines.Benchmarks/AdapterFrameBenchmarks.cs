using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Benchmarks;

/// <summary>
/// The adapter's steady-state frame path over in-memory transport pipes. One operation writes
/// <see cref="FrameSize"/> plaintext bytes to one side's <see cref="OssuaryDuplexPipe.Output"/>,
/// flushes (one flush, one frame), and reads them all from the other side's
/// <see cref="OssuaryDuplexPipe.Input"/>: outbound loop (seal into the transport writer),
/// transport pipe, inbound loop (open into the application pipe), application reader. The
/// connection is made once, in <c>[GlobalSetup]</c>, by running ConnectAsync and AcceptAsync
/// concurrently over two <see cref="Pipe"/>s (client→server and server→client).
/// </summary>
/// <remarks>
/// <para>
/// Two callers. <c>ClientToServer</c>/<c>ServerToClient</c> send one frame per invocation, so
/// every frame starts on BenchmarkDotNet's own thread, which then blocks until the frame has been
/// read (as sync-over-async code does). The <c>Loop</c> variants send
/// <see cref="FramesPerInvocation"/> frames from one async loop on the thread pool, each read
/// starting on the thread that finished the previous one: how an application's connection loop
/// (a Kestrel connection handler, for one) runs. The first caller is the one that catches an
/// allocation which depends on threads: with a pooled async method behind a pending
/// <c>Input.ReadAsync</c>, its box was rented on one thread and returned on another, missed the
/// pool's per-thread cache, and was allocated for nearly every frame (see benchmarks/README.md).
/// </para>
/// <para>
/// Each frame crosses thread-pool hand-offs (outbound loop, inbound loop, the reader's
/// continuation), so the time is mostly scheduling latency on this machine, not crypto.
/// </para>
/// </remarks>
[MemoryDiagnoser]
public class AdapterFrameBenchmarks
{
    private OssuaryIdentity _serverIdentity = null!;
    private OssuaryDuplexPipe _client = null!;
    private OssuaryDuplexPipe _server = null!;
    private byte[] _payload = [];

    [Params(64, 1024, 16384)]
    public int FrameSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[FrameSize];
        Random.Shared.NextBytes(_payload);
        _serverIdentity = OssuaryIdentity.Generate();

        var clientToServer = new Pipe();
        var serverToClient = new Pipe();
        var clientTransport = new DuplexPipe(serverToClient.Reader, clientToServer.Writer);
        var serverTransport = new DuplexPipe(clientToServer.Reader, serverToClient.Writer);

        var serverOptions = new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, Identity = _serverIdentity };
        var clientOptions = new OssuaryClientOptions();
        clientOptions.TrustedServerKeys.Add(_serverIdentity.PublicKey);

        Task<OssuaryDuplexPipe> accept = OssuaryDuplexPipe.AcceptAsync(serverTransport, serverOptions);
        Task<OssuaryDuplexPipe> connect = OssuaryDuplexPipe.ConnectAsync(clientTransport, clientOptions);
        Task.WhenAll(accept, connect).WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        _server = accept.Result;
        _client = connect.Result;

        // Both directions carry the payload intact.
        VerifyAsync(_client, _server).AsTask().WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        VerifyAsync(_server, _client).AsTask().WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Task.WhenAll(_client.DisposeAsync().AsTask(), _server.DisposeAsync().AsTask())
            .WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        _serverIdentity.Dispose();
    }

    /// <summary>Frames sent per invocation by the <c>Loop</c> benchmarks, one at a time.</summary>
    public const int FramesPerInvocation = 64;

    [Benchmark]
    public ValueTask ClientToServer() => TransferAsync(_client.Output, _server.Input, _payload, frames: 1, onThreadPool: false);

    [Benchmark]
    public ValueTask ServerToClient() => TransferAsync(_server.Output, _client.Input, _payload, frames: 1, onThreadPool: false);

    [Benchmark(OperationsPerInvoke = FramesPerInvocation)]
    public ValueTask ClientToServerLoop() => TransferAsync(_client.Output, _server.Input, _payload, FramesPerInvocation, onThreadPool: true);

    [Benchmark(OperationsPerInvoke = FramesPerInvocation)]
    public ValueTask ServerToClientLoop() => TransferAsync(_server.Output, _client.Input, _payload, FramesPerInvocation, onThreadPool: true);

    /// <summary>
    /// For each frame: writes its plaintext, flushes it (one flush, one frame), and reads it fully
    /// on the other side before the next. Pooled, so this method's own box is reused, not allocated.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask TransferAsync(PipeWriter writer, PipeReader reader, byte[] payload, int frames, bool onThreadPool)
    {
        if (onThreadPool)
        {
            // Continue on the thread pool, as a connection loop does (this box is queued as it is).
            await Task.Yield();
        }

        for (int frame = 0; frame < frames; frame++)
        {
            writer.Write(payload);
            FlushResult flushed = await writer.FlushAsync().ConfigureAwait(false);
            if (flushed.IsCompleted)
            {
                throw new InvalidOperationException("The sending side's output completed.");
            }

            long remaining = payload.Length;
            while (remaining > 0)
            {
                ReadResult read = await reader.ReadAsync().ConfigureAwait(false);
                long length = read.Buffer.Length;
                if (length > remaining || (length == 0 && read.IsCompleted))
                {
                    throw new InvalidOperationException($"Read {length} bytes with {remaining} outstanding (completed: {read.IsCompleted}).");
                }

                remaining -= length;
                reader.AdvanceTo(read.Buffer.End);
            }
        }
    }

    private static async ValueTask VerifyAsync(OssuaryDuplexPipe from, OssuaryDuplexPipe to)
    {
        byte[] payload = new byte[3 * Protocol.OssuarySession.MaxPlaintextLength + 17];
        Random.Shared.NextBytes(payload);
        await from.Output.WriteAsync(payload).ConfigureAwait(false);
        var received = new ArrayBufferWriter<byte>(payload.Length);
        while (received.WrittenCount < payload.Length)
        {
            ReadResult read = await to.Input.ReadAsync().ConfigureAwait(false);
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                received.Write(segment.Span);
            }

            to.Input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                break;
            }
        }

        if (!received.WrittenSpan.SequenceEqual(payload))
        {
            throw new InvalidOperationException("The adapter did not deliver the bytes written.");
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
