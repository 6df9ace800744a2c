using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// The tool's sockets have TCP keep-alive (60 s), so that a transfer or a session whose peer vanished
/// without closing fails after about two minutes instead of waiting forever.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliKeepAliveTests : CliTestBase
{
    [Fact]
    public async Task BothEndsOfASessionArmTheKernelsKeepAliveTimer()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        int port = ServerPort(server);
        ToolProcess client = Start("connect", $"127.0.0.1:{port}", "--trust", ServerKey(server), "--wait", "forever");
        await client.WriteAsync("hello\n");
        await server.WaitForStdoutAsync("hello\n");

        KernelTcpSockets.Entry clientEnd = await KernelTcpSockets.IdleAsync(socket => socket.RemotePort == port).Within();
        KernelTcpSockets.Entry serverEnd = await KernelTcpSockets.IdleAsync(socket => socket.LocalPort == port).Within();
        foreach (KernelTcpSockets.Entry end in new[] { clientEnd, serverEnd })
        {
            Assert.True(end.Timer == KernelTcpSockets.KeepAliveTimer && end.Due <= TimeSpan.FromSeconds(60) && end.Due >= TimeSpan.FromSeconds(40),
                $"expected the keep-alive timer (2) due within 60 s: {end}");
        }
    }
}
