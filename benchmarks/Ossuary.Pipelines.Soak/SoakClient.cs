using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Soak;

/// <summary>One connection: sends a deterministic pseudo-random stream and checks the server's SHA-256 of it.</summary>
public static class SoakClient
{
    public static async Task<bool> RunAsync(IPEndPoint server, OssuaryClientOptions options, int seed, long length, CancellationToken cancellationToken)
    {
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server, options, cancellationToken);
        var random = new Random(seed);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] header = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(header, length);
        await connection.Transport.Output.WriteAsync(header, cancellationToken);
        byte[] chunk = new byte[16 * 1024];
        for (long sent = 0; sent < length; sent += chunk.Length)
        {
            int size = (int)Math.Min(chunk.Length, length - sent);
            random.NextBytes(chunk.AsSpan(0, size));
            hash.AppendData(chunk, 0, size);
            await connection.Transport.Output.WriteAsync(chunk.AsMemory(0, size), cancellationToken);
        }

        byte[] expected = hash.GetHashAndReset();
        while (true)
        {
            System.IO.Pipelines.ReadResult read = await connection.Transport.Input.ReadAsync(cancellationToken);
            if (read.Buffer.Length >= expected.Length)
            {
                bool same = BuffersExtensions.ToArray(read.Buffer.Slice(0, expected.Length)).AsSpan().SequenceEqual(expected);
                connection.Transport.Input.AdvanceTo(read.Buffer.End);
                return same;
            }

            connection.Transport.Input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            if (read.IsCompleted)
            {
                return false;
            }
        }
    }
}
