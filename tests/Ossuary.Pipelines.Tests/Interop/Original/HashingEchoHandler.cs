using System.IO.Pipelines;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Interop.Original;

/// <summary>
/// Sends every byte back and records, per connection, the SHA-256 and count of the plaintext it
/// received and how the connection ended (in the <see cref="EchoLog"/> of the Kestrel test server).
/// </summary>
public sealed class HashingEchoHandler(EchoLog log, ReceivedLog received) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        log.Features.Add(connection.Features.Get<IOssuaryConnectionFeature>());
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long count = 0;
        Exception? outcome = null;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync();
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    hash.AppendData(segment.Span);
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
            received.Add(count, Convert.ToHexStringLower(hash.GetHashAndReset()));
            log.Ended(outcome);
        }
    }
}

/// <summary>What each connection of a <see cref="HashingEchoHandler"/> received: byte count and SHA-256 (hex).</summary>
public sealed class ReceivedLog
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<(long Count, string Sha256)> _entries = new();

    public IReadOnlyList<(long Count, string Sha256)> Entries => [.. _entries];

    public void Add(long count, string sha256) => _entries.Enqueue((count, sha256));
}
