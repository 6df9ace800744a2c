using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>A client that closes first (its --wait over) still writes to stdout everything it had received.</summary>
[Collection(CliCollection.Name)]
public sealed class CliIdleCloseTests : CliTestBase
{
    [Fact]
    public async Task AClientThatClosesAtOnceStillWritesWhatItReceivedToAStalledStdout()
    {
        // `ossuary connect --wait 0` whose stdout (a pipe, 64 KiB) is not read for a moment: the server's
        // answer is all in the client's process, part of it waiting for stdout. The end of stdin then
        // closed the session at once (the "still writing to stdout" check did nothing with --wait 0),
        // and the process exited 0 without waiting for the rest of that write: stdout was cut short.
        byte[] answer = new byte[100 * 1024];
        Random.Shared.NextBytes(answer);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using OssuaryIdentity key = OssuaryIdentity.Generate();
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task server = Task.Run(async () =>
        {
            using Socket socket = await listener.AcceptSocketAsync();
            await using var network = new NetworkStream(socket, ownsSocket: false);
            await using OssuaryDuplexPipe secure = await OssuaryDuplexPipe.AcceptAsync(
                new DuplexPipe(PipeReader.Create(network), PipeWriter.Create(network)),
                new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, Identity = key });
            ReadResult request;
            while (!(request = await secure.Input.ReadAsync()).Buffer.ToArray().Contains((byte)'\n'))
            {
                secure.Input.AdvanceTo(request.Buffer.Start, request.Buffer.End);
            }

            secure.Input.AdvanceTo(request.Buffer.End);
            await secure.Output.WriteAsync(answer);
            await secure.Output.CompleteAsync(); // the whole answer, then Disconnect (clean)
            sent.SetResult();
        });

        var firstByte = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stdout = new MemoryStream();
        ToolProcess client = Start(async pipe =>
        {
            var first = new byte[1];
            await pipe.ReadExactlyAsync(first);
            stdout.Write(first);
            firstByte.SetResult();
            await release.Task; // a reader that stalls: the client's write of the rest waits
            await pipe.CopyToAsync(stdout);
        }, "connect", $"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", "--trust", key.PublicKey.ToString(), "--wait", "0");

        await client.WriteAsync("request\n");
        await sent.Task.Within();
        await firstByte.Task.Within();
        client.CloseStdin();

        // Ordering only, never asserted on: the client had time to take the end of stdin for the end of
        // the session and exit, which it did while its write to stdout still waited.
        await Task.WhenAny(client.Exited, Task.Delay(TimeSpan.FromSeconds(3)));
        release.SetResult();
        ToolResult result = await client.WaitForExitAsync();
        await server.Within();

        AssertSucceeds(result);
        Assert.True(answer.AsSpan().SequenceEqual(stdout.ToArray()), $"stdout got {stdout.Length} of the {answer.Length} bytes the server sent\n{result}");
    }

    [Fact]
    public async Task WhatThePeerSentWhileOurIdleCloseWasOnItsWayIsReportedNotDroppedWithExitZero()
    {
        // `ossuary connect --wait 0` closes once the server's first answer is on its stdout; the server, not
        // having seen that Disconnect yet (it waits in a proxy, as on a long line), sends more. The client's
        // closed session discarded it and the tool exited 0 with the first part only.
        string first = new('a', 20_000);
        string more = new('b', 30_000);
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        await using var proxy = new GoodbyeHoldingProxy(new IPEndPoint(IPAddress.Loopback, ServerPort(server)));
        ToolProcess client = Start("connect", $"127.0.0.1:{proxy.EndPoint.Port}", "--trust", ServerKey(server), "--wait", "0");

        await client.WriteAsync("request\n");
        await server.WaitForStdoutAsync("request\n");
        await server.WriteAsync(first);
        await client.WaitForStdoutAsync(first);
        client.CloseStdin(); // the line is idle: the client closes at once
        await proxy.GoodbyeHeld.Within();

        await server.WriteAsync(more);
        await proxy.ServerSentAsync(first.Length + more.Length).Within();
        server.CloseStdin();
        proxy.ReleaseGoodbye();

        ToolResult result = await client.WaitForExitAsync();
        await server.WaitForExitAsync();
        if (result.ExitCode == 0)
        {
            Assert.True(result.Stdout == first + more, $"exit 0 with {result.Stdout.Length} of the {first.Length + more.Length} bytes the server sent\n{result}");
        }
        else
        {
            AssertFails(result, 1, $"sent {more.Length} bytes while this side's close was on its way", "not written to stdout");
            Assert.Equal(first, result.Stdout);
        }
    }

    [Fact]
    public async Task APeerThatNeverAnswersOurIdleCloseIsWaitedForAFewSecondsAndSaidToHaveLeftWhatItSentUncounted()
    {
        // The client's Disconnect never reaches the server (held in the proxy), which sends nothing and never
        // closes: the client waited for ever for anything to end its session.
        (ToolProcess client, GoodbyeHoldingProxy proxy) = await ClientClosedWhenIdleAsync();
        await using (proxy)
        {
            ToolResult result = await client.WaitForExitAsync();

            AssertFails(result, 1, "did not close after it: it did not close within 5 s", "anything it sent meanwhile was not written to stdout");
            Assert.Equal("answer\n", result.Stdout);
        }
    }

    /// <summary>
    /// A server behind a <see cref="GoodbyeHoldingProxy"/>, and a <c>connect --wait 0</c> to it
    /// that has sent a request, received the answer and closed: its Disconnect is held in the proxy, the server has not seen it.
    /// </summary>
    private async Task<(ToolProcess Client, GoodbyeHoldingProxy Proxy)> ClientClosedWhenIdleAsync()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        var proxy = new GoodbyeHoldingProxy(new IPEndPoint(IPAddress.Loopback, ServerPort(server)));
        ToolProcess client = Start("connect", $"127.0.0.1:{proxy.EndPoint.Port}", "--trust", ServerKey(server), "--wait", "0");
        await client.WriteAsync("request\n");
        await server.WaitForStdoutAsync("request\n");
        await server.WriteAsync("answer\n");
        await client.WaitForStdoutAsync("answer\n");
        client.CloseStdin(); // the line is idle: the client closes at once
        await proxy.GoodbyeHeld.Within();
        return (client, proxy);
    }
}
