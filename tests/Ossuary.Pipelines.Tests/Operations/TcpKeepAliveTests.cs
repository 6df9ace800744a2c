using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// TCP keep-alive on both ends' sockets, so that a peer that vanishes without closing is noticed
/// (Ossuary has no ping of its own). Checked where it takes effect: the kernel's keep-alive timer
/// on each established socket (/proc/net/tcp), armed for the configured time.
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
        Assert.Equal(0, (await IdleSocketAsync(local: clientPort, remote: server.EndPoint.Port)).Timer);
        Assert.Equal(0, (await IdleSocketAsync(local: server.EndPoint.Port, remote: clientPort)).Timer);
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

    /// <summary>An established 127.0.0.1 socket in /proc/net/tcp: its timer kind (2: keep-alive) and when it fires.</summary>
    private sealed record KernelSocket(int Timer, TimeSpan Due);

    /// <summary>The socket once nothing it sent awaits an acknowledgement (timer 1, which the kernel shows before keep-alive).</summary>
    private static async Task<KernelSocket> IdleSocketAsync(int local, int remote)
    {
        KernelSocket socket;
        while ((socket = Socket(local, remote)).Timer == 1)
        {
            await Task.Delay(20);
        }

        return socket;
    }

    private static KernelSocket Socket(int local, int remote)
    {
        string wanted = $"0100007F:{local:X4} 0100007F:{remote:X4} 01 "; // 127.0.0.1, little-endian; 01: ESTABLISHED
        string line = File.ReadLines("/proc/net/tcp").SingleOrDefault(l => l.Contains(wanted, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"no established socket 127.0.0.1:{local} -> {remote} in /proc/net/tcp");

        // "tr:tm->when": the timer, then its due time in clock ticks (USER_HZ, 100 a second).
        string[] timer = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[5].Split(':');
        return new KernelSocket(int.Parse(timer[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            TimeSpan.FromSeconds(long.Parse(timer[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture) / 100.0));
    }

    private static void AssertKeepAliveArmed(KernelSocket socket, TimeSpan time)
    {
        Assert.Equal(2, socket.Timer);
        Assert.InRange(socket.Due, time - TimeSpan.FromSeconds(10), time);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
