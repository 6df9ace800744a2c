using System.Buffers;
using System.Net;
using System.Reflection;
using System.Text;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// How a netcat session ends: the two common patterns deliver every byte of 200 MiB and exit 0
/// with a slow producer and a slow consumer (pauses longer than --wait), and a side that cuts the
/// other off says so.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliNetcatTests : CliTestBase
{
    private const int MiB = 200;
    private static readonly TimeSpan Pause = TimeSpan.FromSeconds(0.6);

    [Fact]
    public async Task ASessionThatEndsWithThePeersCloseLeavesNothingWaitingOnTheProcessToken()
    {
        // After the end of stdin, a side with nothing to say waits for the peer's close. It waited
        // with Task.Delay(Infinite, token) beside the peer's end: the delay, and its registration on the
        // process's token, outlived every session, so a listen server (`ossuary listen < /dev/null > log`)
        // grew with every connection it had served. Called here in this process: the growth is too small
        // to see from outside, and too steady to leave.
        MethodInfo peerCloses = Assembly.LoadFrom(ToolProcess.AssemblyPath).GetType("Ossuary.Cli.Net.Netcat", throwOnError: true)!
            .GetMethod("PeerClosesAsync", BindingFlags.NonPublic | BindingFlags.Static)!;
        using var process = new CancellationTokenSource(); // the tool's Ctrl+C token: cancelled only as it exits
        const int Sessions = 20_000;

        await RunAsync(100); // warm-up: JIT, pools
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        // The heap is the process's, and tests of other collections allocate in it meanwhile (one CI run
        // saw 1 MB more over a round): the least growth of three rounds is this code's. A leak grows in every round.
        var grown = new List<long>();
        for (int round = 0; round < 3 && (grown.Count == 0 || grown.Min() >= Sessions * 16); round++)
        {
            long before = GC.GetTotalMemory(forceFullCollection: true);
            await RunAsync(Sessions);
            grown.Add(GC.GetTotalMemory(forceFullCollection: true) - before);
        }

        // Measured: about 150 B a session before (3 MB a round), none after.
        Assert.True(grown.Min() < Sessions * 16, $"{string.Join(", ", grown)} bytes left behind by {Sessions} sessions a round");

        async Task RunAsync(int sessions)
        {
            for (int i = 0; i < sessions; i++)
            {
                var peerClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

                // --wait forever: only the peer's close ends the session.
                var waiting = (Task)peerCloses.Invoke(null, [peerClosed.Task, null, null, null, process.Token])!;
                peerClosed.SetResult();
                await waiting;
            }
        }
    }

    [Fact]
    public async Task AServerSending200MiBToAClientWithNothingToSayDeliversEveryByte()
    {
        // ossuary listen --once < 200MB.bin    +    ossuary connect HOST:P < /dev/null > out
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "0.2");
        int port = ServerPort(server);
        var sink = new BulkStreams.Sink(pauseEvery: 64, Pause);
        ToolProcess client = Start(sink.ReadAsync, "connect", $"127.0.0.1:{port}", "--trust", ServerKey(server), "--wait", "0.2");

        Task<int> writing = BulkStreams.WriteAsync(server.StdinStream, MiB, pauseEvery: 50, Pause);
        // The client's empty stdin ends once the data flows: ended before, it starts the client's
        // --wait before the server's first bytes, a race a loaded machine can lose (the client, with
        // nothing received yet, would close unanswered). From the first bytes on it only receives.
        await sink.Flowing.WaitAsync(ToolProcess.HardTimeout);
        client.CloseStdin();
        int written = await writing;
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        Assert.True(written == MiB, $"the server stopped reading stdin after {written} MiB\n{serverResult}");
        Assert.True((long)MiB << 20 == sink.Length, $"the client delivered {sink.Length} of {(long)MiB << 20} bytes\n{clientResult}\n{serverResult}");
        AssertSucceeds(clientResult);
        AssertSucceeds(serverResult);
        Assert.Equal((long)MiB << 20, sink.Length);
        Assert.Equal(BulkStreams.ExpectedHash(MiB), sink.Hash);
        Assert.Equal("", clientResult.Stderr); // connect is silent on success
    }

    [Fact]
    public async Task AClientWhoseStdoutIsANonBlockingPipeWaitsForRoomAndDeliversEveryByte()
    {
        // A parent that made its stdout non-blocking (node.js does) hands it on: a slow reader fills
        // the pipe, and a write that fails with EAGAIN must wait for room, not end the transfer.
        const int Size = 16;
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "0.2");
        int port = ServerPort(server);
        var sink = new BulkStreams.Sink(pauseEvery: 2, Pause);
        ToolProcess client = StartWithNonBlockingStdout(sink.ReadAsync, "connect", $"127.0.0.1:{port}", "--trust", ServerKey(server), "--wait", "0.2");

        Task<int> writing = BulkStreams.WriteAsync(server.StdinStream, Size, pauseEvery: Size, Pause);
        await sink.Flowing.WaitAsync(ToolProcess.HardTimeout);
        client.CloseStdin();
        int written = await writing;
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        Assert.True(written == Size, $"the server stopped reading stdin after {written} MiB\n{serverResult}");
        AssertSucceeds(clientResult);
        AssertSucceeds(serverResult);
        Assert.Equal((long)Size << 20, sink.Length);
        Assert.Equal(BulkStreams.ExpectedHash(Size), sink.Hash);
    }

    [Fact]
    public async Task AClientWhoseStdinIsANonBlockingPipeWaitsForDataAndSendsEveryByte()
    {
        // A parent that made its stdin non-blocking (python's asyncio does) hands it on: a producer
        // that pauses empties the pipe, and a read that fails with EAGAIN must wait, not end the transfer.
        const int Size = 8;
        var sink = new BulkStreams.Sink(pauseEvery: Size, Pause);
        ToolProcess server = Start(sink.ReadAsync, "listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        await WaitUntilListeningAsync(server);
        server.CloseStdin();
        ToolProcess client = StartWithNonBlockingStdin("connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "0.2");

        int written = await BulkStreams.WriteAsync(client.StdinStream, Size, pauseEvery: 2, Pause);
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        Assert.True(written == Size, $"the client stopped reading stdin after {written} MiB\n{clientResult}");
        AssertSucceeds(clientResult);
        AssertSucceeds(serverResult);
        Assert.Equal((long)Size << 20, sink.Length);
        Assert.Equal(BulkStreams.ExpectedHash(Size), sink.Hash);
    }

    [Fact]
    public async Task AClientSending200MiBToAServerWithNothingToSayDeliversEveryByte()
    {
        // ossuary listen --once < /dev/null > out    +    head -c 200M FILE | ossuary connect ...
        var sink = new BulkStreams.Sink(pauseEvery: 64, Pause);
        ToolProcess server = Start(sink.ReadAsync, "listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "0.2");
        await WaitUntilListeningAsync(server);
        ToolProcess client = Start("connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "0.2");

        Task<int> writing = BulkStreams.WriteAsync(client.StdinStream, MiB, pauseEvery: 50, Pause);
        // As above, the side with nothing to say ends its stdin once the data flows.
        await sink.Flowing.WaitAsync(ToolProcess.HardTimeout);
        server.CloseStdin();
        int written = await writing;
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        Assert.True(written == MiB, $"the client stopped reading stdin after {written} MiB\n{clientResult}");
        Assert.True((long)MiB << 20 == sink.Length, $"the server delivered {sink.Length} of {(long)MiB << 20} bytes\n{clientResult}\n{serverResult}");
        AssertSucceeds(clientResult);
        AssertSucceeds(serverResult);
        Assert.Equal((long)MiB << 20, sink.Length);
        Assert.Equal(BulkStreams.ExpectedHash(MiB), sink.Hash);
        Assert.Contains("closed", serverResult.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASideThatClosesOnASilentPeerSaysSoAndThePeerWithDataLeftFails()
    {
        // A request, then the answer comes later than --wait: the client closes and says so; the
        // server, whose stdin still had the answer to send, fails instead of exiting 0.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once");
        int port = ServerPort(server);
        ToolProcess client = Start("connect", $"127.0.0.1:{port}", "--trust", ServerKey(server), "--wait", "0.3");
        await client.WriteAsync("request\n");
        client.CloseStdin();
        await server.WaitForStdoutAsync("request\n");
        ToolResult clientResult = await client.WaitForExitAsync(); // the server's stdin is still open, its answer not yet written
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertSucceeds(clientResult);
        Assert.Contains($"nothing came from 127.0.0.1:{port} for 0.3 s after the end of stdin; closed the connection", clientResult.Stderr, StringComparison.Ordinal);
        Assert.Contains("--wait forever", clientResult.Stderr, StringComparison.Ordinal);
        Assert.True(serverResult.ExitCode == 1, serverResult.ToString());
        Assert.Contains("closed by the client before the end of stdin; the rest of stdin was not sent", serverResult.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerThatGoesOnSaysWhatWasInFlightToAClosedClientMayNotHaveArrived()
    {
        // Without --once the rest of stdin goes to the next connection, but bytes already sent to
        // the closed one cannot be taken back: the protocol has no acknowledgements, so say so.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1");
        ToolProcess client = Start("connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "0.3");
        await client.WriteAsync("request\n");
        client.CloseStdin();
        await server.WaitForStdoutAsync("request\n");
        await server.WriteAsync("the first part of the answer\n");
        AssertSucceeds(await client.WaitForExitAsync());

        await server.WaitForStderrAsync("may not have arrived");
        Assert.Contains("closed by the client before the end of stdin; what was in flight to it may not have arrived, the rest of stdin goes to the next connection",
            server.Stderr, StringComparison.Ordinal);
        Assert.False(server.HasExited, server.Stderr);
    }

    [Fact]
    public async Task APeerThatClosesWhileStdinIsATerminalIsNoFailure()
    {
        // The README: a peer that closes while our stdin still had data is a failure, "on a terminal
        // ... it is not": a person who did not type anything more lost nothing.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once");
        using ToolProcess client = ToolProcess.StartOnTerminal(Dir, "connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server));
        await server.WaitForStderrAsync("client key anonymous");
        await server.WriteAsync("the answer\n");
        server.CloseStdin();

        AssertSucceeds(await server.WaitForExitAsync());
        ToolResult onTerminal = await client.WaitForExitAsync();
        AssertSucceeds(onTerminal);
        Assert.Contains("the answer", onTerminal.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("not sent", onTerminal.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitForeverKeepsReceivingUntilThePeerCloses()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "0");
        int port = ServerPort(server);
        ToolProcess client = Start("connect", $"127.0.0.1:{port}", "--trust", ServerKey(server), "--wait", "forever");
        await client.WriteAsync("request\n");
        client.CloseStdin();
        await server.WaitForStdoutAsync("request\n");

        // A client with the default --wait, started now, after the first had sent everything: once it
        // has closed for want of an answer, the default wait has passed for the first one too.
        ToolProcess other = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once");
        ToolProcess control = Start("connect", $"127.0.0.1:{ServerPort(other)}", "--trust", ServerKey(other));
        await control.WriteAsync("request\n");
        control.CloseStdin();
        ToolResult gaveUp = await control.WaitForExitAsync();
        AssertSucceeds(gaveUp);
        Assert.Contains("nothing came from", gaveUp.Stderr, StringComparison.Ordinal);
        Assert.False(client.HasExited, client.Stderr);

        await server.WriteAsync("the late answer\n");
        server.CloseStdin();
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertSucceeds(clientResult);
        Assert.Equal("the late answer\n", clientResult.Stdout);
        AssertSucceeds(serverResult);
    }

    [Fact]
    public async Task ABrokenStdoutPipeEndsTheConnectionPromptly()
    {
        // ossuary connect ... | head -c 100, against a server with endless data.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once");
        int port = ServerPort(server);
        var head = new byte[100];
        ToolProcess client = Start(async stdout =>
        {
            await stdout.ReadExactlyAsync(head);
            stdout.Close(); // head -c 100 exits
        }, "connect", $"127.0.0.1:{port}", "--trust", ServerKey(server), "-v");
        client.CloseStdin();
        using var feeding = new CancellationTokenSource();
        Task feeder = Task.Run(async () =>
        {
            byte[] line = Encoding.ASCII.GetBytes(new string('x', 1023) + "\n");
            try
            {
                while (!feeding.IsCancellationRequested)
                {
                    await server.StdinStream.WriteAsync(line, feeding.Token);
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
            }
        });

        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();
        await feeding.CancelAsync();
        await feeder;

        AssertFails(clientResult, 1, "standard output was closed (broken pipe)");
        Assert.Equal((byte)'x', head[0]);
        Assert.True(serverResult.ExitCode == 1, serverResult.ToString()); // its stdin had more for the client
    }

    [Fact]
    public async Task ConnectIsQuietOnSuccessAndSaysWhereItIsWithVerbose()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo");
        int port = ServerPort(server);
        string key = ServerKey(server);

        // The echo answers, and then the line is idle for --wait: a finished exchange, closed quietly.
        ToolResult quiet = await EchoAsync("ping\n", "connect", $"127.0.0.1:{port}", "--trust", key, "--wait", "0.3");
        ToolResult verbose = await EchoAsync("ping\n", "connect", $"127.0.0.1:{port}", "--trust", key, "--wait", "0.3", "-v");

        AssertSucceeds(quiet);
        Assert.Equal("ping\n", quiet.Stdout);
        Assert.Equal("", quiet.Stderr);
        AssertSucceeds(verbose);
        Assert.Contains($"connected to 127.0.0.1:{port}, server key {key}", verbose.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnEchoServerWhoseClientLeftBeforeItsEchoSaysTheEchoWasNotSent()
    {
        // A client that sends a line and Disconnect together: the echo met a connection already over and was
        // never sent, and `listen --echo --once` said "closed" and exited 0.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo", "--once");
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(server)));
        await using (OssuaryClientConnection client = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(server)), options).Within())
        {
            client.Transport.Output.Write("ping\n"u8);
            await client.Transport.Output.CompleteAsync(); // the line and Disconnect (clean), sealed and sent together
        }

        ToolResult result = await server.WaitForExitAsync();
        AssertFails(result, 1, "5 bytes");
        Assert.Contains("not sent", result.Stderr.TrimEnd().Split('\n')[^1], StringComparison.Ordinal);
    }
}
