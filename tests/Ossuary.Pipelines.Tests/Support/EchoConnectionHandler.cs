using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Sends every byte back, and records what each connection's Ossuary feature said.</summary>
public sealed class EchoConnectionHandler(EchoLog log) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        log.Features.Add(connection.Features.Get<IOssuaryConnectionFeature>());
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync();
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    await output.WriteAsync(segment);
                }

                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (OssuaryException ex)
        {
            log.Failures.Add(ex.Reason);
        }
    }
}

public sealed class EchoLog
{
    public System.Collections.Concurrent.ConcurrentBag<IOssuaryConnectionFeature?> Features { get; } = [];

    public System.Collections.Concurrent.ConcurrentBag<OssuaryErrorReason> Failures { get; } = [];
}
