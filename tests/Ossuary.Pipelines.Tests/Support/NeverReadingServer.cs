using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A Kestrel + UseOssuary server that completes the handshake and then neither reads nor writes,
/// so that a client's writes back up until one waits: the stalled peer that Abort and disposal
/// must be able to end.
/// </summary>
internal static class NeverReadingServer
{
    private const int ChunkSize = 256 * 1024;

    public static Task<KestrelHost> StartAsync(MutualKeys keys) =>
        KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(30)));
            listen.Run(connection => Task.Delay(Timeout.Infinite, connection.ConnectionClosed).ContinueWith(_ => { }));
        }));

    /// <summary>
    /// Writes from the thread pool until a write has not returned for a while (the server's buffers
    /// and the sockets' are full) and returns that write, still pending.
    /// </summary>
    public static async Task<Task<FlushResult>> WriteUntilOneWaitsAsync(PipeWriter output)
    {
        byte[] chunk = new byte[ChunkSize];
        for (int written = 0; written < 1024; written++) // 256 MiB: far beyond any buffer between the two
        {
            Task<FlushResult> write = Task.Run(async () => await output.WriteAsync(chunk));
            if (await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(2))) != write)
            {
                return write;
            }

            await write;
        }

        throw new InvalidOperationException("Every write returned: the server is reading after all.");
    }
}
