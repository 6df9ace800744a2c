using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A key revoked while a handshake that presents it is under way. The connection took the plan in force
/// at its accept (its identity must stay alive while it signs), and its admission was decided with that
/// plan's allow-list too: a client holding a stolen key could keep a handshake open across the revocation
/// (a pause before its ClientAuthentication, within the server's timeouts) and be admitted after it, once
/// the operator had closed the key's established connections.
/// </summary>
public sealed class RevocationDuringAHandshakeTests : IDisposable
{
    // Long enough that the client's pause never meets the server's waits on a loaded machine: the test is about the allow-list.
    private static readonly TimeSpan LongWait = TimeSpan.FromMinutes(2);

    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-revoked-midway-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AKeyRemovedFromTheWatchedFileWhileItsHandshakeIsUnderWayIsRefused()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [
            OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey, "sensor-1"),
            OssuaryAuthorizedKeys.FormatLine(revokedKey.PublicKey, "sensor-2 (stolen)"),
        ]);
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen
                .UseOssuary(o =>
                {
                    o.Identity = serverKey;
                    o.AuthorizedKeysFile = file;
                    o.HandshakeTimeout = LongWait;
                    o.HandshakeStepTimeout = LongWait;
                })
                .UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        // The client pauses between the server's ServerHandshake and its own ClientAuthentication (its
        // trust decision), as a client holding a stolen key can: the server's connection is under way.
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var revoked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var options = new OssuaryClientOptions
        {
            Identity = revokedKey,
            HandshakeTimeout = LongWait,
            TrustServer = async (key, cancellationToken) =>
            {
                asked.TrySetResult();
                await revoked.Task.WaitAsync(cancellationToken);
                return key == serverKey.PublicKey;
            },
        };
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync(endpoint, options);
        await asked.Task.Within();

        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey, "sensor-1")]);
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);
        revoked.SetResult();

        await using (OssuaryClientConnection connection = await connecting.Within())
        {
            // Admitted, the echo server sends the bytes back; refused, the first read fails.
            Exception? refused = await Record.ExceptionAsync(async () =>
            {
                await connection.Transport.Output.WriteAsync("ping"u8.ToArray()).Within();
                await PipeReads.ReadExactlyAsync(connection.Transport.Input, 4).Within();
            });
            Assert.True(refused is OssuaryException { Reason: OssuaryErrorReason.ConnectionFailed },
                refused is null ? "the key revoked during its handshake was admitted after the revocation" : $"unexpected: {refused}");
        }

        Assert.Empty(host.Log.Features); // the handler never saw the revoked client
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(keptKey, serverKey.PublicKey))).DisposeAsync();
    }
}
