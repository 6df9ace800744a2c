using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// <see cref="OssuaryClientConnection.Abort(ConnectionAbortedException)"/> may be called from any
/// thread while the application writes on another, as Kestrel's ConnectionContext.Abort may: the
/// write then ends with a completed <see cref="FlushResult"/>. Abort used to complete the
/// application's own PipeWriter from the aborting thread, under a GetMemory/Advance/FlushAsync in
/// progress: the writer then threw "Writing is not allowed after writer was completed" (or Advance
/// an out-of-range error), and the memory it was filling could go back to the pool under it.
/// </summary>
public class AbortRacingWriterTests
{
    private const int Rounds = 200;

    [Fact]
    public async Task AbortFromAnotherThreadEndsAWriterInProgressWithACompletedFlush()
    {
        using var keys = new MutualKeys();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(30)));
            listen.Run(DrainAsync);
        }));
        var server = new IPEndPoint(IPAddress.Loopback, host.Port());

        for (int round = 0; round < Rounds; round++)
        {
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server, keys.ClientOptions()).Within(TimeSpan.FromSeconds(60));
            using var writing = new ManualResetEventSlim();
            Task<Exception?> writer = Task.Factory.StartNew(
                () => WriteUntilCompleted(connection.Transport.Output, writing), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            // Abort lands somewhere in the writer's GetMemory/Advance/FlushAsync cycle: a different place each round.
            Assert.True(writing.Wait(TimeSpan.FromSeconds(60)));
            Thread.SpinWait(Random.Shared.Next(1, 20_000));
            connection.Abort(new ConnectionAbortedException("aborted while writing"));

            Exception? thrown = await writer.Within(TimeSpan.FromSeconds(60));
            Assert.True(thrown is null, $"Round {round}: the writer threw {thrown}");
        }
    }

    /// <summary>Writes small chunks until a flush reports the connection completed; what it threw instead, if it threw.</summary>
    private static Exception? WriteUntilCompleted(PipeWriter output, ManualResetEventSlim writing)
    {
        try
        {
            while (true)
            {
                Memory<byte> memory = output.GetMemory(512);
                memory.Span[..512].Fill(0x5A);
                output.Advance(512);
                writing.Set();
                if (output.FlushAsync().AsTask().GetAwaiter().GetResult().IsCompleted)
                {
                    return null;
                }
            }
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    private static async Task DrainAsync(ConnectionContext connection)
    {
        try
        {
            while (true)
            {
                ReadResult read = await connection.Transport.Input.ReadAsync();
                connection.Transport.Input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception)
        {
            // The client aborted: its connection ends any way it ends.
        }
    }
}
