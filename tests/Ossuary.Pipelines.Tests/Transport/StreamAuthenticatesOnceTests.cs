using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// An <see cref="OssuaryStream"/> authenticates once, as <c>SslStream</c> does: a second
/// <see cref="OssuaryStream.AuthenticateAsServerAsync"/> is refused with <see cref="InvalidOperationException"/>
/// before the application's <see cref="OssuaryServerOptions.IdentitySelector"/> runs. The selector ran
/// before the stream was claimed, so it ran (and was counted as a handshake) for a call then refused, and a
/// stream whose selector had failed was left unclaimed: a second call ran a handshake over a stream that
/// had already carried the client its Disconnect (error).
/// </summary>
public class StreamAuthenticatesOnceTests
{
    [Fact]
    public async Task AStreamWhoseSelectorFailedRefusesASecondAuthenticationWithoutRunningTheSelector()
    {
        using var serverKey = OssuaryIdentity.Generate();
        int calls = 0;
        // Its refusal's wait runs out: the client is not closed until the test ends.
        OssuaryServerOptions options = Options(_ => Interlocked.Increment(ref calls) == 1 ? throw new InvalidOperationException("the key vault is down") : serverKey).Shortened();
        var clientOptions = new OssuaryClientOptions { HandshakeTimeout = TimeSpan.FromMinutes(1) };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        await using var server = new OssuaryStream(serverSide);
        await using var client = new OssuaryStream(clientSide);

        Task told = client.AuthenticateAsClientAsync(clientOptions);
        await Assert.ThrowsAsync<OssuaryException>(() => server.AuthenticateAsServerAsync(options).Within());
        await Assert.ThrowsAsync<OssuaryException>(() => told.Within()); // the client read its Disconnect (error)

        await Assert.ThrowsAsync<InvalidOperationException>(() => server.AuthenticateAsServerAsync(options).Within());
        Assert.Equal(1, Volatile.Read(ref calls));
        Assert.False(server.IsAuthenticated);
    }

    [Fact]
    public async Task AnAuthenticatedStreamRefusesASecondAuthenticationWithoutRunningTheSelector()
    {
        using var serverKey = OssuaryIdentity.Generate();
        int calls = 0;
        OssuaryServerOptions options = Options(_ =>
        {
            Interlocked.Increment(ref calls);
            return serverKey;
        });
        var clientOptions = new OssuaryClientOptions();
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        await using var server = new OssuaryStream(serverSide);
        await using var client = new OssuaryStream(clientSide);
        await Task.WhenAll(server.AuthenticateAsServerAsync(options), client.AuthenticateAsClientAsync(clientOptions)).Within();

        await Assert.ThrowsAsync<InvalidOperationException>(() => server.AuthenticateAsServerAsync(options).Within());

        Assert.Equal(1, Volatile.Read(ref calls));
        Assert.True(server.IsAuthenticated);
    }

    /// <summary>
    /// A refused call is refused before its options are read: they were read first, so a second call whose
    /// options name a key file that cannot be read (a path mistyped on the retry, say) threw that file's
    /// FileNotFoundException, and a call on a disposed stream did too, instead of saying why no handshake could run.
    /// </summary>
    [Fact]
    public async Task ASpentStreamSaysSoBeforeReadingTheOptionsKeyFiles()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"ossuary-missing-{Guid.NewGuid():N}");
        var clientOptions = new OssuaryClientOptions { IdentityKeyFile = missing, TrustedServerKeys = { OssuaryIdentity.Generate().PublicKey } };
        var serverOptions = new OssuaryServerOptions { AuthorizedKeysFile = missing, LoggerFactory = NullLoggerFactory.Instance };
        using var serverKey = OssuaryIdentity.Generate();
        serverOptions.Identity = serverKey;

        // Spent by a handshake that failed: the inner stream ends at once.
        await using var spent = new OssuaryStream(new MemoryStream());
        await Assert.ThrowsAsync<OssuaryException>(() => spent.AuthenticateAsServerAsync(Options(_ => serverKey)).Within());

        InvalidOperationException asClient = await Assert.ThrowsAsync<InvalidOperationException>(() => spent.AuthenticateAsClientAsync(clientOptions).Within());
        InvalidOperationException asServer = await Assert.ThrowsAsync<InvalidOperationException>(() => spent.AuthenticateAsServerAsync(serverOptions).Within());
        Assert.Contains("authenticates once", asClient.Message, StringComparison.Ordinal);
        Assert.Contains("authenticates once", asServer.Message, StringComparison.Ordinal);

        var disposed = new OssuaryStream(new MemoryStream());
        await disposed.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => disposed.AuthenticateAsClientAsync(clientOptions).Within());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => disposed.AuthenticateAsServerAsync(serverOptions).Within());
    }

    private static OssuaryServerOptions Options(Func<Microsoft.AspNetCore.Connections.ConnectionContext?, OssuaryIdentity?> selector) => new()
    {
        Mode = OssuaryServerMode.Unauthenticated,
        IdentitySelector = selector,
        LoggerFactory = NullLoggerFactory.Instance,
    };
}
