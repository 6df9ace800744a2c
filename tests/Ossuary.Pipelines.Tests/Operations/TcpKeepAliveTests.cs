using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// TCP keep-alive on both ends' sockets, so that a peer that vanishes without closing is noticed
/// (Ossuary has no ping of its own). Checked where it takes effect: the kernel's keep-alive timer
/// on each established socket (<see cref="KernelTcpSockets"/>), armed for the configured time.
/// </summary>
public class TcpKeepAliveTests
{
    [Fact]
    public Task BothEndsArmTheKernelsKeepAliveTimerForTheConfiguredTime() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            keys.ConfigureServer(o, TimeSpan.FromSeconds(10));
            o.TcpKeepAlive = TimeSpan.FromSeconds(40);
        });
        OssuaryClientOptions options = keys.ClientOptions();
        options.TcpKeepAlive = TimeSpan.FromSeconds(30);

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync(new byte[] { 1 });
        await connection.Transport.Input.ReadAtLeastAsync(1).AsTask().Within(); // the server end has passed UseOssuary

        int clientPort = ((IPEndPoint)connection.LocalEndPoint!).Port;
        AssertKeepAliveArmed(await IdleSocketAsync(local: clientPort, remote: server.EndPoint.Port), TimeSpan.FromSeconds(30));
        AssertKeepAliveArmed(await IdleSocketAsync(local: server.EndPoint.Port, remote: clientPort), TimeSpan.FromSeconds(40));
    });

    [Fact]
    public Task InfiniteLeavesTheSocketsAsTheSystemHasThem() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            keys.ConfigureServer(o, TimeSpan.FromSeconds(10));
            o.TcpKeepAlive = Timeout.InfiniteTimeSpan;
        });
        OssuaryClientOptions options = keys.ClientOptions();
        options.TcpKeepAlive = Timeout.InfiniteTimeSpan;

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync(new byte[] { 1 });
        await connection.Transport.Input.ReadAtLeastAsync(1).AsTask().Within();

        int clientPort = ((IPEndPoint)connection.LocalEndPoint!).Port;
        AssertNoTimer(await IdleSocketAsync(local: clientPort, remote: server.EndPoint.Port));
        AssertNoTimer(await IdleSocketAsync(local: server.EndPoint.Port, remote: clientPort));
    });

    [Fact]
    public void ProbesFollowEveryQuarterOfTheTimeFourTimes()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        TcpKeepAlive.Apply(listener, TimeSpan.FromSeconds(61.5));

        Assert.Equal(1, (int)listener.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!);
        Assert.Equal(62, (int)listener.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime)!);
        Assert.Equal(15, (int)listener.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval)!);
        Assert.Equal(4, (int)listener.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount)!);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0)]
    [InlineData(40_000)]
    public void AKeepAliveOutsideWhatTheSystemTakesIsRefusedAtValidation(double seconds)
    {
        var server = new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, TcpKeepAlive = TimeSpan.FromSeconds(seconds) };
        var client = new OssuaryClientOptions { TcpKeepAlive = TimeSpan.FromSeconds(seconds) };

        Assert.Contains("OssuaryServerOptions.TcpKeepAlive", Assert.Throws<InvalidOperationException>(() => HandshakePlan.ForServer(server, out _)).Message, StringComparison.Ordinal);
        Assert.Contains("OssuaryClientOptions.TcpKeepAlive", Assert.Throws<InvalidOperationException>(() => HandshakePlan.ForClient(client)).Message, StringComparison.Ordinal);
    }

    private static Task<KernelTcpSockets.Entry> IdleSocketAsync(int local, int remote) =>
        KernelTcpSockets.IdleAsync(socket => socket.LocalPort == local && socket.RemotePort == remote);

    /// <summary>Armed, and due within the configured time (less what has passed since it was set; generous for a loaded machine).</summary>
    private static void AssertKeepAliveArmed(KernelTcpSockets.Entry socket, TimeSpan time) =>
        Assert.True(socket.Timer == KernelTcpSockets.KeepAliveTimer && socket.Due <= time && socket.Due >= time - TimeSpan.FromSeconds(20),
            $"expected the keep-alive timer (2) due within {time.TotalSeconds} s: {socket}");

    // Seen to fail once in a group run and not since: the kernel's entry says which timer was armed.
    private static void AssertNoTimer(KernelTcpSockets.Entry socket) =>
        Assert.True(socket.Timer == 0, $"expected no timer (0): {socket}");

    private static Task Run(Func<Task> test) => test().Within();
}
