using System.IO.Pipelines;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Disposal from another thread while the application is inside a write (between GetMemory and
/// Advance): disposal wakes the outbound loop, which sends what was flushed and the Disconnect without
/// waiting for the write. That write's bytes, committed once its Advance ends the call, come after the
/// Disconnect and are never sent; the peer was nonetheless told a clean Disconnect, and read a clean
/// end short of them. Real Kestrel under UseOssuary (an echo that counts what it received) and a real client.
/// </summary>
public sealed class WriteCutByDisposalTests
{
    private const int Sent = 100;
    private const int Cut = 4096;

    [Fact]
    public Task APeerMissingTheBytesOfAWriteThatDisposalCutIsNotToldACleanDisconnect() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(
            o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)), services => services.AddSingleton<ReceivedLog>());
        OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
        PipeWriter output = client.Transport.Output;

        // Bytes flushed and echoed: they reached the server before anything below.
        Assert.False((await output.WriteAsync(new byte[Sent])).IsCompleted);
        await PipeReads.ReadExactlyAsync(client.Transport.Input, Sent).Within();

        Memory<byte> filling = output.GetMemory(Cut); // the write in progress
        ValueTask disposal = client.DisposeAsync();

        // The server's read has seen the end: the Disconnect went out before the write below was committed.
        Exception? outcome = await server.Log.NextOutcomeAsync();
        filling.Span[..Cut].Fill(0x5A);
        output.Advance(Cut);
        FlushResult flushed = await output.FlushAsync().AsTask().Within();
        await disposal.AsTask().Within();

        long received = server.Services.GetRequiredService<ReceivedLog>().Entries.Single().Count;
        bool sent = received == Sent + Cut;
        Assert.True(sent || outcome is OssuaryException { Reason: OssuaryErrorReason.ConnectionFailed },
            $"the server received {received} of {Sent + Cut} bytes and its input ended {(outcome is null ? "cleanly" : $"with {outcome.GetType().Name}")}");
        Assert.True(sent || flushed.IsCompleted, "the cut write's flush reported its bytes accepted");
    });

    [Fact]
    public Task AWaitForTheBytesOfAWriteThatDisposalCutIsToldTheyFailedAndWhy() => Run(async () =>
    {
        // What OssuaryStream.FlushAsync waits on (WhenSentAsync): it said ConnectionClosed, a clean close, for
        // bytes that never left and a peer that was sent Disconnect (error).
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(
            o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)), services => services.AddSingleton<ReceivedLog>());
        OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
        var secure = (OssuaryDuplexPipe)client.Transport;
        PipeWriter output = client.Transport.Output;
        Assert.False((await output.WriteAsync(new byte[Sent])).IsCompleted);
        await PipeReads.ReadExactlyAsync(client.Transport.Input, Sent).Within();

        output.GetMemory(Cut); // the write in progress
        ValueTask disposal = client.DisposeAsync();
        await server.Log.NextOutcomeAsync(); // the server's read has seen the end: the Disconnect went out before the write below
        output.Advance(Cut);
        await output.FlushAsync().AsTask().Within();
        await disposal.AsTask().Within();

        OssuaryException told = await Assert.ThrowsAsync<OssuaryException>(() => secure.WhenSentAsync(secure.PlaintextWritten, CancellationToken.None).Within());
        Assert.True(told.Reason == OssuaryErrorReason.ConnectionFailed && told.Message.Contains("inside a write", StringComparison.Ordinal), $"{told.Reason}: {told.Message}");
        Assert.Contains("inside a write", told.InnerException?.Message, StringComparison.Ordinal);
    });

    private static Task Run(Func<Task> test) => test().Within();
}
