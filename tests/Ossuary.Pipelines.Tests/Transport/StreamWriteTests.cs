using System.Reflection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;
using static Ossuary.Pipelines.Tests.Transport.OssuaryStreamTests;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// What an <see cref="OssuaryStream"/> write holds while the inner stream takes nothing, and what a
/// second write made while one is in progress (which the stream's docs forbid) does to the first, and
/// a second read to a waiting one.
/// </summary>
public class StreamWriteTests
{
    // Far below the write under test, far above the pieces, the pipe's threshold and one batch of sealed frames.
    private const long HeldBound = 1 << 20;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task ALargeWriteTakesOnlyAFewPiecesOfItsBufferWhileTheInnerStreamTakesNothing(bool synchronous) => Run(async () =>
    {
        // The whole buffer was copied into the connection's pinned plaintext memory before the write
        // waited for room: a 16 MiB write held 16 MiB, a 1 GiB write 1 GiB, for as long as the peer was slow.
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        byte[] message = new byte[16 << 20];
        new Random(5).NextBytes(message);
        pair.ClientGate.Shut();

        Task write = synchronous
            ? Task.Run(() => pair.Client.Write(message, 0, message.Length))
            : pair.Client.WriteAsync(message).AsTask();

        // The connection's sender has sealed the first bytes it was given and is held at the gate:
        // nothing of the write has reached the inner stream, so whatever it took is held.
        await pair.ClientGate.Waiting.Within();
        long held = Connection(pair.Client).PlaintextWritten;
        Assert.False(write.IsCompleted, "the write returned though the inner stream took nothing");
        Assert.True(held <= HeldBound, $"the write put {held} bytes of its {message.Length} in the connection while the inner stream took none");

        pair.ClientGate.Open();
        byte[] received = new byte[message.Length];
        await Task.WhenAll(write, pair.Server.ReadExactlyAsync(received).AsTask()).Within();
        Assert.Equal(message, received);
    });

    /// <summary>
    /// The refusal of a second write comes through the task it returns (EndWrite for BeginWrite), as
    /// <c>SslStream</c>'s does, not from the call: it was thrown from WriteAsync and BeginWrite themselves,
    /// which escapes code that starts writes and awaits them together, and left a BeginWrite's callback uncalled.
    /// </summary>
    [Fact]
    public Task ASecondWritesRefusalComesThroughItsTaskNotFromTheCall() => Run(async () =>
    {
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        byte[] message = new byte[1 << 20];
        new Random(7).NextBytes(message);
        pair.ClientGate.Shut();
        Task first = pair.Client.WriteAsync(message).AsTask();
        await pair.ClientGate.Waiting.Within();
        Assert.False(first.IsCompleted, "the first write returned though the inner stream took nothing: the test proves nothing");
        byte[] interloper = "interloper"u8.ToArray();

        ValueTask memoryWrite = default;
        Assert.Null(Record.Exception(() => { memoryWrite = pair.Client.WriteAsync(interloper.AsMemory()); }));
        await Assert.ThrowsAsync<InvalidOperationException>(() => memoryWrite.AsTask().Within());

        Task arrayWrite = Task.CompletedTask;
        Assert.Null(Record.Exception(() => { arrayWrite = pair.Client.WriteAsync(interloper, 0, interloper.Length); }));
        await Assert.ThrowsAsync<InvalidOperationException>(() => arrayWrite.Within());

        var called = new TaskCompletionSource<IAsyncResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.Null(Record.Exception(() => { pair.Client.BeginWrite(interloper, 0, interloper.Length, result => called.TrySetResult(result), null); }));
        IAsyncResult begun = await called.Task.Within();
        Assert.Throws<InvalidOperationException>(() => pair.Client.EndWrite(begun));

        pair.ClientGate.Open();
        byte[] received = new byte[message.Length];
        await Task.WhenAll(first, pair.Server.ReadExactlyAsync(received).AsTask()).Within();
        Assert.Equal(message, received);
    });

    [Fact]
    public Task ASecondWriteWhileOneIsInProgressIsRefusedAndTheFirstStillDeliversEveryByte() => Run(async () =>
    {
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        byte[] message = new byte[1 << 20];
        new Random(6).NextBytes(message);
        pair.ClientGate.Shut();
        Task first = pair.Client.WriteAsync(message).AsTask();
        await pair.ClientGate.Waiting.Within();
        Assert.False(first.IsCompleted, "the first write returned though the inner stream took nothing: the test proves nothing");

        InvalidOperationException refused = await Assert.ThrowsAsync<InvalidOperationException>(() => pair.Client.WriteAsync("interloper"u8.ToArray()).AsTask().Within());
        Assert.Contains("write", refused.Message, StringComparison.OrdinalIgnoreCase);

        pair.ClientGate.Open();
        await first.Within();
        await pair.Client.WriteAsync("next"u8.ToArray()).AsTask().Within(); // the stream goes on, in order
        byte[] received = new byte[message.Length + 4];
        await pair.Server.ReadExactlyAsync(received).AsTask().Within();
        Assert.Equal([.. message, .. "next"u8.ToArray()], received);
    });

    [Fact]
    public Task ASecondReadWhileOneWaitsIsRefusedAndTheFirstStillGetsTheBytes() => Run(async () =>
    {
        // What the class summary says of reads, as of writes.
        await using AuthenticatedStreams pair = await AuthenticatedStreams.StartAsync();
        byte[] first = new byte[5];
        Task<int> waiting = pair.Client.ReadAsync(first).AsTask();

        await Assert.ThrowsAsync<InvalidOperationException>(() => pair.Client.ReadAsync(new byte[5]).AsTask().Within());

        await pair.Server.WriteAsync("first"u8.ToArray()).AsTask().Within();
        Assert.Equal(5, await waiting.Within());
        Assert.Equal("first"u8.ToArray(), first);
    });

    /// <summary>The stream's connection, for what it has taken from its writers.</summary>
    private static OssuaryDuplexPipe Connection(OssuaryStream stream) =>
        (OssuaryDuplexPipe)typeof(OssuaryStream).GetField("_secure", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(stream)!;

    private static Task Run(Func<Task> test) => test().Within();
}
