using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>A well-behaved client: handshake, send a payload, read the echo, compare SHA-256, say goodbye.</summary>
internal static class HonestClient
{
    /// <summary>One round against an echo server; returns how long it took, handshake included.</summary>
    public static async Task<TimeSpan> EchoAsync(EndPoint server, OssuaryClientOptions options, int size, int seed)
    {
        byte[] payload = new byte[size];
        new Random(seed).NextBytes(payload);
        long started = Stopwatch.GetTimestamp();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server, options).Within();
        Task<byte[]> echoed = PipeReads.ReadExactlyAsync(connection.Transport.Input, size);
        await connection.Transport.Output.WriteAsync(payload).Within();
        byte[] back = await echoed.Within();
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(back));
        return Stopwatch.GetElapsedTime(started);
    }
}
