using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Says goodbye and returns at once: the middleware then ends the connection.</summary>
public sealed class GoodbyeConnectionHandler(EchoLog log) : ConnectionHandler
{
    public static ReadOnlyMemory<byte> Goodbye { get; } = "goodbye"u8.ToArray();

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        log.Features.Add(connection.Features.Get<IOssuaryConnectionFeature>());
        FlushResult flushed = await connection.Transport.Output.WriteAsync(Goodbye);
        log.Ended(flushed.IsCompleted ? new InvalidOperationException("the output was already closed") : null);
    }
}

/// <summary>Reads until it holds <see cref="Length"/> bytes, then returns holding them, its read never advanced.</summary>
public sealed class HalfReadingConnectionHandler : ConnectionHandler
{
    public const int Length = 48 * 1024;

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        while (true)
        {
            ReadResult read = await connection.Transport.Input.ReadAsync();
            if (read.Buffer.Length >= Length || read.IsCompleted)
            {
                return; // no AdvanceTo: a handler that gave up half way through its read
            }

            connection.Transport.Input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }
}

/// <summary>
/// Reads once, completes its input with <see cref="Failure"/> and says <c>done</c>, then stays until the connection closes:
/// an application that failed while reading.
/// </summary>
public sealed class FailingReaderConnectionHandler : ConnectionHandler
{
    public const string Failure = "the handler gave up reading";

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ReadResult read = await connection.Transport.Input.ReadAsync();
        connection.Transport.Input.AdvanceTo(read.Buffer.End);
        await connection.Transport.Input.CompleteAsync(new InvalidOperationException(Failure));
        await connection.Transport.Output.WriteAsync("done"u8.ToArray());
        try
        {
            await Task.Delay(Timeout.Infinite, connection.ConnectionClosed);
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>
/// Sends without pause (until its writes are refused) while it reads slowly: a server streaming a
/// long answer the client may never read. Records each connection's byte count, and how it ended.
/// </summary>
public sealed class StreamingSlowReaderConnectionHandler(EchoLog log, ReceivedLog received) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        Task sending = SendAsync(connection.Transport.Output);
        await SlowReader.ReadToTheEndAsync(connection.Transport.Input, log, received, betweenReads: null);
        await sending;
    }

    private static async Task SendAsync(PipeWriter output)
    {
        byte[] chunk = new byte[64 * 1024];
        try
        {
            for (int i = 0; i < 4096; i++)
            {
                if ((await output.WriteAsync(chunk)).IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OssuaryException or InvalidOperationException or IOException or ConnectionAbortedException)
        {
            // The connection ended under the write: how it ended is the reader's to record.
        }
    }
}

/// <summary>When the test says so (<see cref="LateAnswerGate.Answer"/>), the server answers once; the test learns the client's port first.</summary>
public sealed class LateAnswerGate
{
    public TaskCompletionSource<int> ClientPort { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Reads slowly (the client's last bytes wait in its socket) and, once the test opens the gate,
/// sends one small frame, as a server acknowledging what it has read would; logs what it read and how it ended.
/// </summary>
public sealed class LateAnsweringSlowReaderConnectionHandler(EchoLog log, ReceivedLog received, LateAnswerGate gate) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        gate.ClientPort.TrySetResult(((System.Net.IPEndPoint)connection.RemoteEndPoint!).Port);
        bool answered = false;
        await SlowReader.ReadToTheEndAsync(connection.Transport.Input, log, received, async () =>
        {
            if (!answered && gate.Answer.Task.IsCompleted)
            {
                answered = true;
                await connection.Transport.Output.WriteAsync("ack"u8.ToArray());
            }
        });
    }
}

/// <summary>The read loop of the slow-reading handlers above.</summary>
internal static class SlowReader
{
    /// <summary>
    /// Reads to the end, more slowly than a client sends (its last bytes wait in its socket), doing
    /// <paramref name="betweenReads"/> after each read; records the byte count and how the input ended.
    /// </summary>
    public static async Task ReadToTheEndAsync(PipeReader input, EchoLog log, ReceivedLog received, Func<Task>? betweenReads)
    {
        long count = 0;
        Exception? outcome = null;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync();
                count += read.Buffer.Length;
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    break;
                }

                if (betweenReads is not null)
                {
                    await betweenReads();
                }

                await Task.Delay(2);
            }
        }
        catch (Exception ex)
        {
            outcome = ex;
        }
        finally
        {
            received.Add(count, "");
            log.Ended(outcome);
        }
    }
}
