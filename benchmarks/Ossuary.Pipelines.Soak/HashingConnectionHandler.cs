using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Connections;

namespace Ossuary.Pipelines.Soak;

/// <summary>Hashes everything a client sends and answers with the SHA-256 once the client signals the end.</summary>
/// <remarks>The stream is: an 8-byte big-endian length, then that many bytes; the answer is the 32-byte digest.</remarks>
internal sealed class HashingConnectionHandler(SoakCounters counters) : ConnectionHandler
{
    private static long ReadLength(ReadOnlySequence<byte> buffer)
    {
        Span<byte> header = stackalloc byte[8];
        buffer.Slice(0, 8).CopyTo(header);
        return System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(header);
    }

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        PipeReader input = connection.Transport.Input;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long expected = -1;
        long received = 0;
        try
        {
            while (expected < 0 || received < expected)
            {
                ReadResult read = await input.ReadAsync();
                ReadOnlySequence<byte> buffer = read.Buffer;
                if (expected < 0 && buffer.Length >= 8)
                {
                    expected = ReadLength(buffer);
                    buffer = buffer.Slice(8);
                }

                if (expected >= 0)
                {
                    ReadOnlySequence<byte> body = buffer.Slice(0, Math.Min(buffer.Length, expected - received));
                    foreach (ReadOnlyMemory<byte> segment in body)
                    {
                        hash.AppendData(segment.Span);
                    }

                    received += body.Length;
                    buffer = buffer.Slice(body.End);
                }

                input.AdvanceTo(buffer.Start, read.Buffer.End);
                if (read.IsCompleted && (expected < 0 || received < expected))
                {
                    Interlocked.Increment(ref counters.ServerFailures);
                    return;
                }
            }

            await connection.Transport.Output.WriteAsync(hash.GetHashAndReset());
            Interlocked.Add(ref counters.BytesHashed, received);

            // Wait for the client's Disconnect so that the answer is read before either side closes.
            while (true)
            {
                ReadResult rest = await input.ReadAsync();
                input.AdvanceTo(rest.Buffer.End);
                if (rest.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (OssuaryException)
        {
            Interlocked.Increment(ref counters.ServerFailures);
        }
    }
}
