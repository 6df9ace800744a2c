using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A UseOssuary server whose handler reads once, says "bye" and returns: a server that is done while
/// its client may still be sending. <see cref="Disposed"/> completes once the secure connection has
/// been disposed, seen by a middleware outside UseOssuary (after any wait for the client's close).
/// </summary>
internal sealed class ByeServer : IAsyncDisposable
{
    private readonly TaskCompletionSource _read = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private KestrelHost? _host;

    /// <summary>Completes once the handler has read the client's first bytes (and is about to say goodbye).</summary>
    public Task FirstRead => _read.Task;

    /// <summary>Completes once the server's secure connection has been disposed.</summary>
    public Task Disposed => _disposed.Task;

    public IPEndPoint Endpoint => new(IPAddress.Loopback, _host!.Port());

    /// <summary>Starts it with <paramref name="keys"/>' server key, admitting their client key; logging to <paramref name="logs"/> if given.</summary>
    public static async Task<ByeServer> StartAsync(MutualKeys keys, FakeLoggerProvider? logs = null)
    {
        var server = new ByeServer();
        server._host = await KestrelHost.StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Use(next => async connection =>
                {
                    try
                    {
                        await next(connection);
                    }
                    finally
                    {
                        server._disposed.TrySetResult();
                    }
                });
                listen.UseOssuary(o =>
                {
                    o.Identity = keys.Server;
                    o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
                });
                listen.Run(async connection =>
                {
                    System.IO.Pipelines.ReadResult first = await connection.Transport.Input.ReadAsync();
                    connection.Transport.Input.AdvanceTo(first.Buffer.End);
                    server._read.TrySetResult();
                    await connection.Transport.Output.WriteAsync("bye"u8.ToArray());
                });
            }),
            logs is null ? null : builder => OssuaryTestServer.LogTo(logs)(builder.Services));
        return server;
    }

    public ValueTask DisposeAsync() => _host?.DisposeAsync() ?? ValueTask.CompletedTask;
}
