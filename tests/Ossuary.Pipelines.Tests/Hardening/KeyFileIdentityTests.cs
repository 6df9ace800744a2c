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

    private static Task Run(Func<Task> test) => test().Within();
}
