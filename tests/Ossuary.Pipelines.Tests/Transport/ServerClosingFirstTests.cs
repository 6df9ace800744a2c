using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>A Kestrel + <c>UseOssuary</c> server that ends the connection itself, as a request/response server does.</summary>
public class ServerClosingFirstTests
{
    [Fact]
    public async Task AServerThatEndsTheConnectionReadsACleanEndAndTheClientGetsEveryByte()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var serverRead = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartAsync(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            });
            listen.Run(async connection =>
            {
                try
                {
                    await connection.Transport.Output.WriteAsync("reply"u8.ToArray());
                    await connection.Transport.Output.CompleteAsync(); // Disconnect: the server is done

                    // Kestrel aborts a connection's input once its output completes; that is the end
                    // the server asked for, not a failure ("The transport failed" before).
                    await PipeReads.ReadToEndAsync(connection.Transport.Input);
                    serverRead.TrySetResult("clean end");
                }
                catch (Exception ex)
                {
                    serverRead.TrySetResult($"{ex.GetType().Name}: {ex.Message}");
                }
            });
        }));
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), options).Within();

        Assert.Equal("reply"u8.ToArray(), await PipeReads.ReadToEndAsync(client.Transport.Input).Within());
        Assert.Equal("clean end", await serverRead.Task.Within());
    }

    [Fact]
    public async Task ConnectionClosedFiresWhenTheServersDisconnectArrivesWhileTheClientsOutputIsStuck()
    {
        // A server that says goodbye without reading what the client sent, and keeps its socket open:
        // the client's output stays stuck sending to it. Its reads saw the end and its writes returned
        // completed, but ConnectionClosed waited for both directions to stop, so until disposal: code
        // that disposes the connection once ConnectionClosed fires waited forever.
        using var keys = new MutualKeys();
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync((IPEndPoint)listener.LocalEndpoint, keys.ClientOptions());
        using System.Net.Sockets.Socket accepted = await listener.AcceptSocketAsync().Within();
        var serverOptions = new OssuaryServerOptions { Identity = keys.Server };
        serverOptions.AuthorizedClientKeys.Add(keys.Client.PublicKey);
        await using OssuaryDuplexPipe server = await OssuaryDuplexPipe.AcceptAsync(
            new StreamDuplexPipe(new System.Net.Sockets.NetworkStream(accepted), leaveOpen: true, mayStopReading: false), serverOptions).Within();
        await using OssuaryClientConnection client = await connecting.Within();

        Task<System.IO.Pipelines.FlushResult> stuck = await NeverReadingServer.WriteUntilOneWaitsAsync(client.Transport.Output);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using CancellationTokenRegistration registration = client.ConnectionClosed.Register(() => closed.TrySetResult());

        await server.Output.CompleteAsync(); // Disconnect
        Assert.Empty(await PipeReads.ReadToEndAsync(client.Transport.Input).Within());
        Assert.True((await stuck.Within()).IsCompleted);
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
