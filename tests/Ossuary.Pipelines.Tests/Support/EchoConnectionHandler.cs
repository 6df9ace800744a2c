using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Sends every byte back, and records what each connection's Ossuary feature said and how the
/// connection ended; with a <see cref="ReceivedLog"/> registered, also each connection's byte count
/// and SHA-256.
/// </summary>
public sealed class EchoConnectionHandler(EchoLog log, ReceivedLog? received = null) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        log.Features.Add(connection.Features.Get<IOssuaryConnectionFeature>());
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        using IncrementalHash? hash = received is null ? null : IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long count = 0;
        Exception? outcome = null;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync();
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    hash?.AppendData(segment.Span);
                    count += segment.Length;
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
            if (hash is not null)
            {
                received!.Add(count, Convert.ToHexStringLower(hash.GetHashAndReset()));
            }

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
