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
