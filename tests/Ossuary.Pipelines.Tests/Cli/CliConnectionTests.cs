using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary><c>ossuary listen</c> and <c>ossuary connect</c> as separate processes over loopback.</summary>
[Collection(CliCollection.Name)]
public sealed class CliConnectionTests : CliTestBase
{
    [Fact]
    public async Task ListenAndConnectWithAnAuthorizedKeyCarryDataBothWays()
    {
        string serverKey = await KeygenAsync("server.key");
        string clientKey = await KeygenAsync("client.key");
        File.WriteAllText(Path.Combine(Dir, "authorized_keys"), $"# who may connect\n\n{clientKey} the test client\n");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--authorized-keys", "authorized_keys", "--once");
        int port = ServerPort(server);
        Assert.Contains($"(authenticated, 1 client key(s)); server key {serverKey}", server.Stderr, StringComparison.Ordinal);

        ToolProcess client = Start("connect", $"127.0.0.1:{port}", "--key", "client.key", "--trust", serverKey, "--known-hosts", "known_hosts", "-v");
        await client.WaitForStderrAsync($"connected to 127.0.0.1:{port}, server key {serverKey}");
        await server.WaitForStderrAsync($"client key {clientKey}");

        await server.WriteAsync("hello from the server\n");
        await client.WaitForStdoutAsync("hello from the server\n");
        await client.WriteAsync("hello from the client\n");
        await server.WaitForStdoutAsync("hello from the client\n");

        server.CloseStdin(); // both have said everything: the client closes cleanly after its --wait
        client.CloseStdin();
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertSucceeds(clientResult);
        Assert.Equal("hello from the server\n", clientResult.Stdout);
        AssertSucceeds(serverResult); // --once: the first connection ended cleanly
        Assert.Equal("hello from the client\n", serverResult.Stdout);
        Assert.Contains("closed", serverResult.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(Dir, "known_hosts"))); // --trust needs no known-hosts entry
    }

    [Fact]
    public async Task AListenServerGivesStdinTypedBetweenConnectionsToTheNextOne()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1");
        int port = ServerPort(server);
        string serverKey = ServerKey(server);

        ToolProcess first = Start("connect", $"127.0.0.1:{port}", "--trust", serverKey, "--wait", "0.2");
        await first.WriteAsync("one\n");
        await server.WaitForStdoutAsync("one\n");
        first.CloseStdin();
        AssertSucceeds(await first.WaitForExitAsync());
        await server.WaitForStderrAsync("closed");

        // Typed while nobody is connected: it belongs to the next connection, not to the one that ended.
        await server.WriteAsync("for the second\n");
        ToolProcess second = Start("connect", $"127.0.0.1:{port}", "--trust", serverKey, "--wait", "0.2");
        await second.WaitForStdoutAsync("for the second\n");
        await second.WriteAsync("bye\n"); // a client that only receives would wait for the server to close
        await server.WaitForStdoutAsync("bye\n");
        second.CloseStdin();
        ToolResult result = await second.WaitForExitAsync();

        AssertSucceeds(result);
        Assert.Equal("for the second\n", result.Stdout);
        Assert.False(server.HasExited);
    }

    [Fact]
    public async Task StrangersThatConnectToANetcatListenerAndSayNothingDoNotKeepTheClientOut()
    {
        // listen took one handshake at a time, as nc -l takes one connection: a stranger who reached the
        // port and said nothing held it for a whole handshake timeout (10 s), and --once then ended with
        // that stranger's failure (exit 1); the client behind it in the backlog was never served.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "0.2");
        var endPoint = new IPEndPoint(IPAddress.Loopback, ServerPort(server));
        var strangers = new List<Socket>();
        try
        {
            for (int i = 0; i < 2; i++)
            {
                strangers.Add(await RawPeer.ConnectAsync(endPoint)); // accepted before the client: the backlog is first come, first served
            }

            ToolProcess client = Start("connect", $"127.0.0.1:{endPoint.Port}", "--trust", ServerKey(server), "--wait", "0.2");
            await client.WriteAsync("hello\n");
            await server.WaitForStdoutAsync("hello\n");
            client.CloseStdin();
            server.CloseStdin();
            ToolResult clientResult = await client.WaitForExitAsync();
            ToolResult serverResult = await server.WaitForExitAsync();

            AssertSucceeds(clientResult);
            AssertSucceeds(serverResult);
            Assert.Equal("hello\n", serverResult.Stdout);

            // The strangers were closed unserved once the client had won: none was sent anything.
            foreach (Socket stranger in strangers)
            {
                PeerClose close = await RawPeer.WaitForCloseAsync(stranger, ToolProcess.HardTimeout);
                Assert.True(close.Closed);
                Assert.Equal(0, close.BytesReceived);
            }
        }
        finally
        {
            strangers.ForEach(stranger => stranger.Dispose());
        }
    }

    [Fact]
    public async Task AFloodOfFailedConnectionsIsReportedAFewLinesAMinuteWithACountOfTheRest()
    {
        // A server wrote a line on stderr for every failed connection: a scan or a flood of them, which
        // anyone who reaches the port can make, filled the operator's terminal or journal.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo");
        var endPoint = new IPEndPoint(IPAddress.Loopback, ServerPort(server));
        const int Strangers = 40;
        const int ShownAMinute = 10;
        for (int i = 0; i < Strangers; i++)
        {
            using Socket stranger = await RawPeer.ConnectAsync(endPoint);
            stranger.Shutdown(SocketShutdown.Send); // it hangs up without a word
            // Closed by the server: its failure has been reported or counted.
            Assert.True((await RawPeer.WaitForCloseAsync(stranger, ToolProcess.HardTimeout)).Closed);
        }

        await server.SignalAsync("TERM");
        ToolResult stopped = await server.WaitForExitAsync();

        // The first ones in full (the one an operator looks for is usually the first), then a count.
        int shown = stopped.Stderr.Split('\n').Count(line => line.Contains("closed the connection without answering the Ossuary handshake", StringComparison.Ordinal));
        Assert.True(shown == ShownAMinute, stopped.ToString());
        Assert.Contains($"ossuary: {Strangers - ShownAMinute} more connection(s) failed in the same minute, not reported one by one", stopped.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASessionsLostDataIsReportedEvenAfterAMinutesWorthOfStrangersFailedHandshakes()
    {
        // Strangers' failed handshakes are counted past the first few a minute; a session that lost
        // data was counted with them, so a scan hid "what was in flight may not have arrived" inside
        // "N more connection(s) failed".
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--wait", "forever");
        var endPoint = new IPEndPoint(IPAddress.Loopback, ServerPort(server));
        for (int i = 0; i < ConnectionFailureBurst; i++)
        {
            using Socket stranger = await RawPeer.ConnectAsync(endPoint);
            stranger.Shutdown(SocketShutdown.Send);
            Assert.True((await RawPeer.WaitForCloseAsync(stranger, ToolProcess.HardTimeout)).Closed);
        }

        await server.WriteAsync("for the first client\n");
        ToolProcess client = Start("connect", endPoint.ToString(), "--trust", ServerKey(server), "--wait", "forever");
        client.CloseStdin();
        await client.WaitForStdoutAsync("for the first client\n");
        await client.SignalAsync("TERM"); // its Disconnect (error): what the server sent may be lost
        AssertFails(await client.WaitForExitAsync(), 143, "interrupted");

        // Sessions are served one at a time: the next one begins once the first has been reported.
        ToolProcess next = Start("connect", endPoint.ToString(), "--trust", ServerKey(server), "--wait", "forever");
        await WaitForStderrCountAsync(server, ", client key anonymous", 2);
        await server.SignalAsync("TERM");
        ToolResult stopped = await server.WaitForExitAsync();

        Assert.Contains("the client ended the connection with an error (it failed or was stopped); what was in flight to it may not have arrived", stopped.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("more connection(s) failed", stopped.Stderr, StringComparison.Ordinal);
    }

    private const int ConnectionFailureBurst = 10;

    private static async Task WaitForStderrCountAsync(ToolProcess tool, string text, int count)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (tool.Stderr.Split(text).Length - 1 < count)
        {
            Assert.False(tool.HasExited, $"the tool ended before '{text}' appeared {count} times on stderr:\n{tool.Stderr}");
            Assert.True(waited.Elapsed < ToolProcess.HardTimeout, $"'{text}' did not appear {count} times on stderr:\n{tool.Stderr}");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task TofuRecordsTheServerAndALaterChangedKeyIsRefused()
    {
        string knownHosts = Path.Combine("trust", "store", "known_hosts"); // directories made on first use
        ToolProcess first = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo", "--once");
        int port = ServerPort(first);
        string firstKey = ServerKey(first);

        ToolProcess client = Start("connect", $"127.0.0.1:{port}", "--tofu", "--known-hosts", knownHosts, "--wait", "0.2");
        await client.WriteAsync("ping\n");
        await client.WaitForStdoutAsync("ping\n");
        client.CloseStdin();
        ToolResult trusted = await client.WaitForExitAsync();

        AssertSucceeds(trusted);
        Assert.Contains($"trusting 127.0.0.1:{port} on first use; recorded key {firstKey}", trusted.Stderr, StringComparison.Ordinal);
        string recorded = File.ReadAllText(Path.Combine(Dir, knownHosts));
        Assert.StartsWith($"127.0.0.1:{port} {firstKey}", recorded, StringComparison.Ordinal);
        Assert.Single(recorded.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        AssertSucceeds(await first.WaitForExitAsync());

        // The same host and port now answers with another key (the port is the one the first server just gave up).
        ToolProcess impostor = await StartServerAsync("listen", "--port", Port(port), "--bind", "127.0.0.1", "--echo", "--once");
        string otherKey = ServerKey(impostor);
        Assert.NotEqual(firstKey, otherKey);
        ToolProcess refusedClient = Start("connect", $"127.0.0.1:{port}", "--tofu", "--known-hosts", knownHosts);
        await refusedClient.WriteAsync("secret\n");
        ToolResult refused = await refusedClient.WaitForExitAsync();

        AssertFails(refused, 3, "REMOTE HOST IDENTIFICATION HAS CHANGED", $"127.0.0.1:{port}", otherKey, firstKey);
        Assert.Equal("", refused.Stdout);
        Assert.Equal(recorded, File.ReadAllText(Path.Combine(Dir, knownHosts))); // --tofu never replaces a key
        await impostor.WaitForStderrAsync("refused");
        Assert.DoesNotContain("secret", impostor.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TofuRefusesAnotherKeyForAHostTheFileSpellsDifferently()
    {
        // The file holds the real server's key for [0::1]:PORT, which is [::1]:PORT. Compared as spelled,
        // the host was unknown: --tofu recorded the impostor's key beside the real one and connected.
        const string realKey = "1111111111111111111111111111111111111111111111111111111111111111";
        ToolProcess impostor = Start("listen", "--port", "0", "--bind", "::1", "--echo", "--once");
        var listening = new System.Text.RegularExpressions.Regex(@"listening on \[::1\]:([0-9]+) ");
        await impostor.WaitForStderrMatchAsync(listening, ToolProcess.HardTimeout);
        int port = int.Parse(listening.Match(impostor.Stderr).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        string impostorKey = ServerKey(impostor);
        string recorded = $"[0::1]:{port} {realKey}\n";
        File.WriteAllText(Path.Combine(Dir, "known_hosts"), recorded);

        ToolProcess client = Start("connect", $"[::1]:{port}", "--tofu", "--known-hosts", "known_hosts");
        await client.WriteAsync("secret\n");
        ToolResult refused = await client.WaitForExitAsync();

        AssertFails(refused, 3, "REMOTE HOST IDENTIFICATION HAS CHANGED", $"[::1]:{port}", impostorKey, realKey, "known_hosts:1");
        Assert.Equal("", refused.Stdout);
        Assert.Equal(recorded, File.ReadAllText(Path.Combine(Dir, "known_hosts")));
        await impostor.WaitForStderrAsync("refused");
        Assert.DoesNotContain("secret", impostor.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TofuThatCannotRecordTheKeyOnAFullDiskIsAFailureNotBadInput()
    {
        // The known-hosts file is fine; the disk under it is full. Exit 2 said the user's file was at fault.
        using var disk = FullDisk.Mount();
        disk.Fill();
        string knownHosts = Path.Combine(disk.Path, "known_hosts");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo");

        ToolResult failed = await RunAsync("connect", $"127.0.0.1:{ServerPort(server)}", "--tofu", "--known-hosts", knownHosts);

        AssertFails(failed, 1, $"cannot record 127.0.0.1:{ServerPort(server)}'s key {ServerKey(server)}", "No space left on device", "not connecting");
        Assert.Equal("", failed.Stdout);
    }

    [Fact]
    public async Task TwoProcessesTrustingDifferentKeysForOneHostAtOnceRecordOneAndTheOtherIsRefused()
    {
        // Two servers with different keys behind one address: a forwarder accepts both clients
        // before passing either on, so both have read the (missing) known-hosts file before
        // either records a key, the race a stale snapshot loses.
        using var keyA = OssuaryIdentity.Generate();
        using var keyB = OssuaryIdentity.Generate();
        await using var serverA = await OssuaryTestServer.StartEchoAsync(o => { o.Identity = keyA; o.Mode = OssuaryServerMode.Unauthenticated; });
        await using var serverB = await OssuaryTestServer.StartEchoAsync(o => { o.Identity = keyB; o.Mode = OssuaryServerMode.Unauthenticated; });
        using var front = new TcpListener(IPAddress.Loopback, 0);
        front.Start();
        int port = ((IPEndPoint)front.LocalEndpoint).Port;
        Task forwarding = ForwardPairAsync(front, serverA.EndPoint, serverB.EndPoint);

        using ToolProcess first = Start("connect", $"127.0.0.1:{port}", "--tofu", "--known-hosts", "known_hosts", "--wait", "0.2");
        using ToolProcess second = Start("connect", $"127.0.0.1:{port}", "--tofu", "--known-hosts", "known_hosts", "--wait", "0.2");
        await first.WriteAsync("ping\n");
        await second.WriteAsync("ping\n");
        first.CloseStdin();
        second.CloseStdin();
        ToolResult[] results = [await first.WaitForExitAsync(), await second.WaitForExitAsync()];
        await forwarding.Within();

        string[] lines = File.ReadAllLines(Path.Combine(Dir, "known_hosts"));
        string recorded = Assert.Single(lines).Split(' ')[1]; // exactly one key for 127.0.0.1:port
        string other = recorded == keyA.PublicKey.ToString() ? keyB.PublicKey.ToString() : keyA.PublicKey.ToString();
        Assert.Contains(recorded, new[] { keyA.PublicKey.ToString(), keyB.PublicKey.ToString() });
        ToolResult winner = Assert.Single(results, r => r.ExitCode == 0);
        ToolResult loser = Assert.Single(results, r => r.ExitCode != 0);
        Assert.Contains($"recorded key {recorded}", winner.Stderr, StringComparison.Ordinal);
        AssertFails(loser, 3, "REMOTE HOST IDENTIFICATION HAS CHANGED", other, recorded); // it sees the winner's key
    }

    /// <summary>Accepts two connections, then joins the first to <paramref name="a"/> and the second to <paramref name="b"/>.</summary>
    private static async Task ForwardPairAsync(TcpListener front, IPEndPoint a, IPEndPoint b)
    {
        using TcpClient one = await front.AcceptTcpClientAsync();
        using TcpClient two = await front.AcceptTcpClientAsync();
        using var toA = new TcpClient();
        using var toB = new TcpClient();
        await toA.ConnectAsync(a);
        await toB.ConnectAsync(b);
        await Task.WhenAll(JoinAsync(one, toA), JoinAsync(two, toB));
    }

    private static async Task JoinAsync(TcpClient left, TcpClient right)
    {
        static async Task PumpAsync(TcpClient from, TcpClient to)
        {
            try
            {
                await from.GetStream().CopyToAsync(to.GetStream());
                to.Client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
            }
        }

        await Task.WhenAll(PumpAsync(left, right), PumpAsync(right, left));
    }

    [Fact]
    public async Task AnEchoServerOutOfFileDescriptorsWaitsForSomeToEndInsteadOfExiting()
    {
        // A flood of connections that say nothing takes a descriptor each until its handshake times
        // out. The accept that found none left threw out of the accept loop: the server exited
        // ("network error: Too many open files") and served nobody again; and where the runtime found
        // none left as it loaded code, it aborted the process. It holds (192 - 64) / 2 = 64 at once now.
        ToolProcess server = StartWithOpenFileLimit(192, "listen", "--port", "0", "--bind", "127.0.0.1", "--echo");
        await WaitUntilListeningAsync(server);
        int port = ServerPort(server);
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var flood = new List<Socket>();
        try
        {
            for (int i = 0; i < 256; i++)
            {
                flood.Add(await RawPeer.ConnectAsync(endPoint)); // the kernel's backlog takes them all
            }

            await server.WaitForStderrAsync("64 connections open, as many as this process can hold; accepting more as they end");
            Assert.False(server.HasExited, $"the server exited:\n{server.Stderr}");
        }
        finally
        {
            flood.ForEach(socket => socket.Dispose());
        }

        // Once the flood's connections end, the server accepts and serves again.
        string serverKey = ServerKey(server);
        AssertSucceeds(await EchoAsync("still here\n", "connect", $"127.0.0.1:{port}", "--trust", serverKey, "--known-hosts", "known_hosts"));
        Assert.False(server.HasExited, $"the server exited:\n{server.Stderr}");
    }

    [Fact]
    public async Task AnUnknownServerIsRefusedWithItsKeyAndHowToTrustIt()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo");
        int port = ServerPort(server);
        string serverKey = ServerKey(server);

        ToolResult result = await RunAsync("connect", $"127.0.0.1:{port}", "--known-hosts", "known_hosts");

        AssertFails(result, 3, $"127.0.0.1:{port} presented key {serverKey}, which is not trusted", $"--trust {serverKey}", "--tofu");
        Assert.False(File.Exists(Path.Combine(Dir, "known_hosts")));
        Assert.False(File.Exists(Path.Combine(Dir, ".ossuary", "known_hosts")));
    }

    [Fact]
    public async Task AnUnknownClientIsRefusedWithItsKeyAndEndsAOnceServer()
    {
        string serverKey = WriteKeyFile("server.key");
        string clientKey = WriteKeyFile("client.key");
        string intruderKey = WriteKeyFile("intruder.key");
        File.WriteAllText(Path.Combine(Dir, "authorized_keys"), clientKey + "\n");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--authorized-keys", "authorized_keys");
        int port = ServerPort(server);

        // stdin stays open and silent: the refusal, not an end of stdin, ends these clients.
        ToolProcess intruder = Start("connect", $"127.0.0.1:{port}", "--key", "intruder.key", "--trust", serverKey);
        ToolResult refused = await intruder.WaitForExitAsync();
        AssertFails(refused, 1, "connection failed", "authorized client keys");
        // The admin sees which key was turned away, and how to admit it.
        await server.WaitForStderrAsync($"refused: client key {intruderKey} is not authorized (to admit it: --allow {intruderKey})");

        ToolProcess anonymous = Start("connect", $"127.0.0.1:{port}", "--trust", serverKey);
        AssertFails(await anonymous.WaitForExitAsync(), 1, "connection failed");
        await server.WaitForStderrAsync("the client presented no key");
        Assert.Equal("", server.Stdout);

        ToolProcess client = Start("connect", $"127.0.0.1:{port}", "--key", "client.key", "--trust", serverKey, "--wait", "0.2");
        await client.WriteAsync("authorized\n");
        await server.WaitForStdoutAsync("authorized\n");
        client.CloseStdin();
        AssertSucceeds(await client.WaitForExitAsync());
        await server.WaitForStderrAsync($"client key {clientKey}");

        // --once counts a refused handshake as its one connection, as nc -l ends after its first.
        ToolProcess once = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--authorized-keys", "authorized_keys", "--once");
        int oncePort = ServerPort(once);
        AssertFails(await RunAsync("connect", $"127.0.0.1:{oncePort}", "--key", "intruder.key", "--trust", serverKey), 1, "connection failed");
        ToolResult onceResult = await once.WaitForExitAsync();
        AssertFails(onceResult, 1, $"client key {intruderKey} is not authorized");
    }

    /// <summary>
    /// A client counts itself established once its authentication has gone, and may send at once. The
    /// server closed its socket as soon as it had reported its refusal (Disconnect (error)): the client's
    /// bytes then met a closed socket, or waited there unread, and drew a reset, which on many stacks drops
    /// the Disconnect before the client reads it (it saw "connection reset", not that it was refused).
    /// </summary>
    [Fact]
    public async Task ARefusedClientThatSendsAfterTheRefusalGetsAnOrderlyEndNotAReset()
    {
        string serverKey = WriteKeyFile("server.key");
        File.WriteAllText(Path.Combine(Dir, "authorized_keys"), WriteKeyFile("client.key") + "\n");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--authorized-keys", "authorized_keys", "--once");
        using var intruderKey = OssuaryIdentity.Generate();
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = intruderKey };
        options.AuthorizedKeys.Add(OssuaryPublicKey.Parse(serverKey));
        using var intruder = new SessionSocketPeer(await RawPeer.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(server))), new OssuarySession(options));
        await intruder.HandshakeAsync();
        byte[] packet = intruder.DataPacket(new byte[1024]);

        // Sends once the server has said it refused the client: after its one chance to have closed the socket first.
        (_, OssuaryErrorReason ended) = await intruder.ReadUntilEndedAsync();
        await server.WaitForStderrAsync($"client key {intruderKey.PublicKey} is not authorized");
        bool sent = await RawPeer.TrySendAsync(intruder.Socket, packet);
        try
        {
            intruder.Socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // Already reset: the socket has no end left to close (what is asserted below says so).
        }

        PeerClose close = await RawPeer.WaitForCloseAsync(intruder.Socket, TestTimeout.Default);
        int pendingError = (int)intruder.Socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;

        Assert.Equal((true, OssuaryErrorReason.ConnectionFailed, new PeerClose(Closed: true, Reset: false, BytesReceived: 0), 0), (sent, ended, close, pendingError));
        AssertFails(await server.WaitForExitAsync(), 1, $"client key {intruderKey.PublicKey} is not authorized");
    }

    [Fact]
    public async Task AServerWhoseKeyTheClientRejectsDoesNotCallItARefusal()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once");
        int port = ServerPort(server);

        AssertFails(await RunAsync("connect", $"127.0.0.1:{port}", "--known-hosts", "known_hosts"), 3, "which is not trusted");
        ToolResult serverResult = await server.WaitForExitAsync();

        Assert.True(serverResult.ExitCode == 1, serverResult.ToString());
        Assert.Contains("ended the handshake with an error: the client does not trust this server's key", serverResult.Stderr, StringComparison.Ordinal);
        Assert.Contains("this server refused nothing", serverResult.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(" refused:", serverResult.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServersMalformedDisconnectIsSaidToBeOneNotAFailureOrARefusal()
    {
        // A Disconnect too short to hold its error flag, right after the handshake: the session counts it as a
        // failure, and the client said the server "failed or was stopped, or ... refused this client".
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using OssuaryIdentity key = OssuaryIdentity.Generate();
        Task server = Task.Run(async () =>
        {
            using Socket socket = await listener.AcceptSocketAsync();
            await using var network = new NetworkStream(socket, ownsSocket: false);
            await using OssuaryDuplexPipe secure = await OssuaryDuplexPipe.AcceptAsync(
                new DuplexPipe(System.IO.Pipelines.PipeReader.Create(network), System.IO.Pipelines.PipeWriter.Create(network)),
                new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, Identity = key });
            await socket.SendAsync(new byte[] { 0, 2, 0, 0, 0, 0x10, 0, 0, 0, 0 }); // Disconnect, a body of 2 bytes (zeros)
            try
            {
                while (!(await secure.Input.ReadAsync()).IsCompleted) // until the client's answer ends the session
                {
                }
            }
            catch (OssuaryException)
            {
                // the client's answer to a Disconnect it took for a failure
            }
        });

        ToolResult result = await RunWithInputAsync("", "connect", $"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", "--trust", key.PublicKey.ToString(), "--wait", "forever");
        await server.Within();

        AssertFails(result, 1, "the peer ended the connection with a malformed Disconnect (2 bytes of body where 4 are due)");
        Assert.DoesNotContain("refused", result.Stderr, StringComparison.Ordinal);
    }
}
