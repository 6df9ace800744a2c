using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// Issue 14, item 7: a refused client completes its handshake and learns of the refusal from its
/// next operation, with the same reason whichever API it uses.
/// </summary>
public class AdmissionReasonTests
{
    [Fact]
    public async Task ARefusedStreamClientSeesConnectionFailedFromReadsAndFromWrites()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, listedKey)));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
        await using var stream = new OssuaryStream(tcp.GetStream());

        await stream.AuthenticateAsClientAsync(Echo.ClientOptions(strangerKey, serverKey.PublicKey)).Within(); // admission comes after
        OssuaryException read = await Assert.ThrowsAsync<OssuaryException>(() => stream.ReadAsync(new byte[16]).AsTask().Within());
        OssuaryException write = await Assert.ThrowsAsync<OssuaryException>(() => stream.WriteAsync("hello?"u8.ToArray()).AsTask().Within());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, read.Reason);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, write.Reason);
    }

    [Fact]
    public async Task ARefusedStreamClientThatOnlyWritesSeesConnectionFailedFromItsFlush()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, listedKey)));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
        await using var stream = new OssuaryStream(tcp.GetStream());
        await stream.AuthenticateAsClientAsync(Echo.ClientOptions(strangerKey, serverKey.PublicKey)).Within();

        // Writes succeed until the server's Disconnect arrives; then a write or flush reports it.
        OssuaryException? refused = null;
        for (int i = 0; i < 1000 && refused is null; i++)
        {
            try
            {
                await stream.WriteAsync("data nobody reads"u8.ToArray()).AsTask().Within();
                await stream.FlushAsync().Within();
                await Task.Delay(10);
            }
            catch (OssuaryException ex)
            {
                refused = ex;
            }
        }

        Assert.NotNull(refused);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
    }

    [Fact]
    public async Task ARefusedPipeClientsWriteRightAfterItsFailedReadReturnsCompleted()
    {
        // The README's table: the first read throws ConnectionFailed, and writes after that return a
        // completed FlushResult, at once, not only once the connection has finished closing: a write
        // told it was not completed believes its bytes are on their way, and they are dropped.
        using var serverKey = OssuaryIdentity.Generate();
        using var listedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, listedKey)));
        var endPoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        int notCompleted = 0;
        for (int i = 0; i < 20; i++)
        {
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(endPoint, Echo.ClientOptions(strangerKey, serverKey.PublicKey)).Within();
            await Echo.AssertRefusedAsync(connection);
            if (!(await connection.Transport.Output.WriteAsync("after the refusal"u8.ToArray()).AsTask().Within()).IsCompleted)
            {
                notCompleted++;
            }
        }

        Assert.Equal(0, notCompleted);
    }

    [Fact]
    public async Task ARefusedPipeClientSeesConnectionFailedFromItsReadAndACompletedWriteAfter()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, listedKey)));

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(strangerKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(connection);
        await Task.Delay(Timeout.Infinite, connection.ConnectionClosed).ContinueWith(_ => { }).Within();

        Assert.True((await connection.Transport.Output.WriteAsync("late"u8.ToArray()).AsTask().Within()).IsCompleted);
    }
}
