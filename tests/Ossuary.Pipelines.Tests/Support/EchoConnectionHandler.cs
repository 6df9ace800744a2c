using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Sends every byte back, and records what each connection's Ossuary feature said and how the connection ended.</summary>
public sealed class EchoConnectionHandler(EchoLog log) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        log.Features.Add(connection.Features.Get<IOssuaryConnectionFeature>());
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        Exception? outcome = null;
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
            outcome = ex;
        }
        catch (Exception ex)
        {
            outcome = ex;
            throw;
        }
        finally
        {
            log.Ended(outcome);
        }
    }
}

public sealed class EchoLog
{
    private readonly Channel<Exception?> _outcomes = Channel.CreateUnbounded<Exception?>();

    public System.Collections.Concurrent.ConcurrentBag<IOssuaryConnectionFeature?> Features { get; } = [];

    public System.Collections.Concurrent.ConcurrentBag<OssuaryErrorReason> Failures { get; } = [];

    /// <summary>Records how a handler's connection ended: null when its input completed normally.</summary>
    public void Ended(Exception? outcome) => _outcomes.Writer.TryWrite(outcome);

    /// <summary>How the next handler to finish ended (null: its input completed normally).</summary>
    public async Task<Exception?> NextOutcomeAsync() => await _outcomes.Reader.ReadAsync().AsTask().Within();
}
