using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// A client configured with <c>IdentityKeyFile</c> reads the file for every connect: that connect's
/// copy of the secret seed is zeroed once its handshake is over, not left for the finalizer (the
/// seed would stay in memory once per connect until a collection came).
/// </summary>
public sealed class KeyFileIdentityTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-keyfile-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public Task AConnectsCopyOfAKeyFilesSeedIsZeroedOnceItsHandshakeIsOver() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        string keyFile = Path.Combine(_folder, "client.key");

        // The seed, kept for the search in one pinned array the search skips.
        byte[] seed = GC.AllocateArray<byte>(OssuaryIdentity.SeedSize, pinned: true);
        try
        {
            OssuaryPublicKey clientPublic;
            using (var clientKey = OssuaryIdentity.Generate())
            {
                OssuarySecretKeyFile.Write(keyFile, clientKey);
                clientKey.CopySeedTo(seed);
                clientPublic = clientKey.PublicKey;
            }

            await using var server = await OssuaryTestServer.StartEchoAsync(o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(clientPublic);
            });
            var options = new OssuaryClientOptions { IdentityKeyFile = keyFile };
            options.TrustedServerKeys.Add(serverKey.PublicKey);
            for (int i = 0; i < 3; i++)
            {
                await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
                await connection.Transport.Output.WriteAsync(new byte[] { 1 });
                await connection.Transport.Input.ReadAtLeastAsync(1);
            }

            Assert.Equal(0, ProcessMemory.Count(seed));
        }
        finally
        {
            Array.Clear(seed);
        }
    });

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes are a Unix concept
    public async Task AKeyFileOthersMayReadFailsTheConnectWithTheDocumentedExceptionBeforeAnySocket()
    {
        string keyFile = Path.Combine(_folder, "shared.key");
        using (var clientKey = OssuaryIdentity.Generate())
        {
            OssuarySecretKeyFile.Write(keyFile, clientKey);
        }

        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var options = new OssuaryClientOptions { IdentityKeyFile = keyFile, TrustedServerKeys = { StrangerKey.Value } };
        using var closed = new ClosedPort(); // a connect first would fail with a SocketException instead

        UnauthorizedAccessException refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(
            () => OssuaryClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, closed.Port), options).Within());
        Assert.Throws<UnauthorizedAccessException>(() => new OssuaryConnectionFactory(options));

        Assert.Contains("chmod 600", refused.Message);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
