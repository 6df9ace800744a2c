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
