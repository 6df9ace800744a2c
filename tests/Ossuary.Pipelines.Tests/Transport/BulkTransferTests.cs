using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>Volume and concurrency through Kestrel on loopback TCP, checked with SHA-256.</summary>
public class BulkTransferTests
{
    [Theory]
    [InlineData(1 << 20)]
    [InlineData(64 << 20)]
    public Task EchoOfRandomDataInRandomSizedWritesHashesTheSameBothWays(int length) => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);

        // Writes and reads run at once: the echo cannot buffer 64 MiB, so backpressure must flow both ways.
        Task<byte[]> sent = WriteRandomAsync(connection.Transport.Output, length, seed: length);
        Task<(long Length, byte[] Hash)> received = ReadAndHashAsync(connection.Transport.Input, length);
        await Task.WhenAll(sent, received).Within(TimeSpan.FromSeconds(50));

        Assert.Equal(length, received.Result.Length);
        Assert.Equal(Convert.ToHexString(sent.Result), Convert.ToHexString(received.Result.Hash));
        Assert.Empty(server.Server.Log.Failures);
    }, TimeSpan.FromSeconds(55));

    [Fact]
    public Task TwoHundredConcurrentConnectionsEachGetTheirOwnBytesBack() => Run(async () =>
    {
        const int Connections = 200;
        const int PerConnection = 8 * 1024;
        await using var server = await AuthenticatedEchoServer.StartAsync();

        async Task<bool> EchoOnceAsync(int seed)
        {
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);
            Task<byte[]> sent = WriteRandomAsync(connection.Transport.Output, PerConnection, seed);
            (long length, byte[] hash) = await ReadAndHashAsync(connection.Transport.Input, PerConnection);
            byte[] expected = await sent;
            return length == PerConnection && hash.AsSpan().SequenceEqual(expected);
        }

        bool[] results = await Task.WhenAll(Enumerable.Range(1, Connections).Select(seed => Task.Run(() => EchoOnceAsync(seed))));

        Assert.All(results, Assert.True);
        Assert.Equal(Connections, server.Server.Log.Features.Count);
        for (int i = 0; i < Connections; i++)
        {
            Assert.Null(await server.Server.Log.NextOutcomeAsync()); // every server handler saw a clean end
        }
    });

    /// <summary>Writes <paramref name="length"/> seeded random bytes in writes of 1 byte to 70 KiB, flushing each; returns their SHA-256.</summary>
    internal static async Task<byte[]> WriteRandomAsync(PipeWriter output, int length, int seed)
    {
        var random = new Random(seed);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] chunk = new byte[70 * 1024];
        int written = 0;
        while (written < length)
        {
            int size = Math.Min(length - written, random.Next(4) == 0 ? random.Next(1, 64) : random.Next(1, chunk.Length + 1));
            random.NextBytes(chunk.AsSpan(0, size));
            hash.AppendData(chunk, 0, size);
            FlushResult flushed = await output.WriteAsync(chunk.AsMemory(0, size));
            Assert.False(flushed.IsCompleted, "the connection closed while writing");
            written += size;
        }

        return hash.GetHashAndReset();
    }

    /// <summary>Reads exactly <paramref name="length"/> bytes (failing if the input ends first) and returns their SHA-256.</summary>
    internal static async Task<(long Length, byte[] Hash)> ReadAndHashAsync(PipeReader input, long length)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        while (total < length)
        {
            ReadResult read = await input.ReadAsync();
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                hash.AppendData(segment.Span);
            }

            total += read.Buffer.Length;
            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                break;
            }
        }

        return (total, hash.GetHashAndReset());
    }

    private static Task Run(Func<Task> test, TimeSpan? limit = null) => test().Within(limit);
}

/// <summary>A Kestrel echo server that admits one client identity, and client options that trust it.</summary>
internal sealed class AuthenticatedEchoServer : IAsyncDisposable
{
    private readonly OssuaryIdentity _serverKey;
    private readonly OssuaryIdentity _clientKey;

    private AuthenticatedEchoServer(OssuaryIdentity serverKey, OssuaryIdentity clientKey, OssuaryTestServer server)
    {
        _serverKey = serverKey;
        _clientKey = clientKey;
        Server = server;
        ClientOptions = new OssuaryClientOptions { Identity = clientKey };
        ClientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
    }

    public OssuaryTestServer Server { get; }

    public OssuaryClientOptions ClientOptions { get; }

    public OssuaryPublicKey ServerPublicKey => _serverKey.PublicKey;

    public OssuaryPublicKey ClientPublicKey => _clientKey.PublicKey;

    public static async Task<AuthenticatedEchoServer> StartAsync<THandler>(
        Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null, Action<OssuaryServerOptions>? configure = null)
        where THandler : Microsoft.AspNetCore.Connections.ConnectionHandler
    {
        var serverKey = OssuaryIdentity.Generate();
        var clientKey = OssuaryIdentity.Generate();
        OssuaryTestServer server = await OssuaryTestServer.StartAsync<THandler>(
            o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(clientKey.PublicKey);
                configure?.Invoke(o);
            },
            services);
        return new AuthenticatedEchoServer(serverKey, clientKey, server);
    }

    public static Task<AuthenticatedEchoServer> StartAsync(
        Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null, Action<OssuaryServerOptions>? configure = null) =>
        StartAsync<EchoConnectionHandler>(services, configure);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        _serverKey.Dispose();
        _clientKey.Dispose();
    }
}
