using System.CommandLine;
using System.Net.Sockets;
using Ossuary.Cli.Net;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Commands;

/// <summary><c>ossuary listen</c>: a server, netcat style or echoing.</summary>
internal static class ListenCommand
{
    public static Command Create()
    {
        var port = CliOptions.Port("TCP port to listen on.", anyFree: true);
        var bind = new Option<string>("--bind") { Description = "Address or host name to bind (localhost, 127.0.0.1, ::).", DefaultValueFactory = _ => "0.0.0.0" };
        var echo = new Option<bool>("--echo") { Description = "Send every connection's bytes back instead of using stdin/stdout." };
        var once = new Option<bool>("--once") { Description = "Exit after the first connection, refused handshakes included (exit 0 only if it ended cleanly)." };
        var wait = ConnectCommand.WaitOption();
        var trust = new ServerTrust();
        var command = new Command("listen", "Accept Ossuary connections: the client's bytes go to stdout, stdin goes to the client.") { port, bind, echo, once, wait };
        trust.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            using ServerSetup setup = trust.Create(parse, stdinFree: parse.GetValue(echo));
            using Socket listener = SocketPipe.Listen(parse.GetValue(bind)!, parse.GetValue(port));
            string mode = setup.Authenticated ? $"authenticated, {setup.AllowedCount} client key(s)" : "unauthenticated";
            Console.Error.WriteLine($"ossuary: listening on {listener.LocalEndPoint} ({mode}); server key {setup.Identity.PublicKey}");
            using var failures = new ConnectionFailureLog();
            var serve = new ServeOptions(setup, failures, parse.GetValue(echo), CliOptions.Get(parse, wait), parse.GetValue(once));
            if (!serve.Echo)
            {
                Netcat.StartReadingStdin();
            }

            return serve.Echo && !serve.Once
                ? await ServeSideBySideAsync(listener, serve, cancellationToken)
                : await ServeOneAtATimeAsync(listener, serve, cancellationToken);
        }));
        return command;
    }

    /// <summary>
    /// One session at a time (netcat sessions share stdin and stdout; --once serves one), but the
    /// handshakes of the connections waiting for it run side by side: a stranger who connects and
    /// says nothing must not hold the port until its handshake times out. --once ends with the first
    /// connection whose handshake ends, a refused one included, as nc -l ends after its first connection.
    /// </summary>
    private static async Task<int> ServeOneAtATimeAsync(Socket listener, ServeOptions serve, CancellationToken cancellationToken)
    {
        while (true)
        {
            (SocketPipe Pipe, OssuaryDuplexPipe Secure)? accepted = await FirstSecuredConnection.AcceptAsync(
                listener, serve.Setup, serve.Failures, () => serve.Once, cancellationToken);
            int outcome = accepted is { } session ? await ServeAsync(session.Pipe, session.Secure, serve, cancellationToken) : ExitCodes.Failure;
            if (serve.Once)
            {
                return outcome;
            }
        }
    }

    /// <summary>
    /// Echo connections side by side, as many as the process has descriptors for (see
    /// <see cref="ConnectionBudget"/>); past that, connections wait in the backlog until one ends.
    /// </summary>
    private static async Task<int> ServeSideBySideAsync(Socket listener, ServeOptions serve, CancellationToken cancellationToken)
    {
        // Not disposed: a connection still ending after the command returns releases its slot.
        var slots = new SemaphoreSlim(ConnectionBudget.Connections);
        var full = new OncePerMinute();
        while (true)
        {
            if (!slots.Wait(0, CancellationToken.None))
            {
                full.Say($"ossuary: {ConnectionBudget.Connections} connections open, as many as this process can hold; accepting more as they end (said at most once a minute)");
                await slots.WaitAsync(cancellationToken);
            }

            Socket socket = await ListenerAccept.NextAsync(listener, cancellationToken);
            _ = ReleaseWhenEndedAsync(HandshakeAndServeAsync(socket, serve, cancellationToken), slots, cancellationToken);
        }
    }

    /// <summary>
    /// Frees an echo connection's slot once it ends. A connection reports its own failures (the
    /// peer's, its stream's) where they happen, so what reaches here is a bug of the tool: said with
    /// its cause and type, rather than suppressed with the task. The server goes on. A cancellation is the
    /// server stopping only when <paramref name="stopping"/> says so; any other is a bug like the rest.
    /// </summary>
    private static async Task ReleaseWhenEndedAsync(Task<int> connection, SemaphoreSlim slots, CancellationToken stopping)
    {
        try
        {
            await connection;
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The server is stopping (Ctrl+C).
        }
        catch (SocketException)
        {
            // The peer reset as its socket was set up.
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"ossuary: an echo connection failed with an {UnexpectedError.Describe(ex)} (a bug in ossuary; the server goes on)");
        }
        finally
        {
            slots.Release();
        }
    }

    private sealed record ServeOptions(ServerSetup Setup, ConnectionFailureLog Failures, bool Echo, TimeSpan? Wait, bool Once);

    /// <summary>One connection of an echo server, handshake included; its failures are reported and never end the server.</summary>
    private static async Task<int> HandshakeAndServeAsync(Socket socket, ServeOptions serve, CancellationToken cancellationToken)
    {
        var pipe = new SocketPipe(socket);
        OssuaryDuplexPipe? secure = null;
        try
        {
            secure = await ServerHandshake.AcceptAsync(pipe, serve.Setup, serve.Failures, cancellationToken);
        }
        finally
        {
            if (secure is null)
            {
                await pipe.DisposeAsync();
            }
        }

        return secure is null ? ExitCodes.Failure : await ServeAsync(pipe, secure, serve, cancellationToken);
    }

    /// <summary>
    /// One secured connection, which this disposes; its failures are reported and never end the server. Returns the exit code --once would end with.
    /// Its failure lines are never rate-limited as strangers' failed handshakes are (<see cref="ConnectionFailureLog"/>): a scan must not hide that a session lost data.
    /// </summary>
    private static async Task<int> ServeAsync(SocketPipe pipe, OssuaryDuplexPipe secure, ServeOptions serve, CancellationToken cancellationToken)
    {
        await using var owned = pipe;
        string peer = pipe.RemoteEndPoint?.ToString() ?? "?";
        try
        {
            int outcome;
            bool stdinHandedOver;
            await using (secure)
            {
                (outcome, stdinHandedOver) = await ServeSecuredAsync(pipe, secure, peer, serve, cancellationToken);
            }

            // The end of stdin only means every byte was handed to the connection: a client that
            // stopped reading and then closed left the last of them here, and they are gone.
            if (outcome == ExitCodes.Success && stdinHandedOver && UnsentStdin.Count(secure) is > 0 and long unsent)
            {
                Console.Error.WriteLine($"ossuary: connection from {peer}: {UnsentStdin.Describe(unsent, "the client")}");
                return ExitCodes.Failure;
            }

            // Nor does an echo written before the client's close was read: its session had ended, and nothing more went out.
            if (outcome == ExitCodes.Success && serve.Echo && UnsentStdin.Count(secure) is > 0 and long unechoed)
            {
                Console.Error.WriteLine($"ossuary: connection from {peer}: the last {unechoed} bytes echoed were not sent: the client closed the connection or stopped reading before it took them");
                return ExitCodes.Failure;
            }

            // Disposal gives up on a client that stopped reading and drops what it had not taken.
            if (outcome == ExitCodes.Success && pipe.OutputDropped)
            {
                Console.Error.WriteLine($"ossuary: connection from {peer}: the client stopped reading; the last bytes sent to it and the close were dropped");
                return ExitCodes.Failure;
            }

            return outcome;
        }
        catch (OssuaryException ex) when (ex is { Reason: OssuaryErrorReason.ConnectionFailed, InnerException: null })
        {
            // The client's Disconnect (error) once secured: a refusal of either key ends the handshake, so
            // the client failed or was stopped. The library's own words, "Connection failed.", said
            // neither whose failure it was nor that what this server sent may be lost.
            Console.Error.WriteLine($"ossuary: connection from {peer} failed: the client ended the connection with an error (it failed or was stopped); what was in flight to it may not have arrived");
            return ExitCodes.Failure;
        }
        catch (OssuaryException ex)
        {
            Console.Error.WriteLine($"ossuary: connection from {peer} failed ({ex.Reason}): {ex.Message}");
            return ExitCodes.Failure;
        }
        catch (IOException ex)
        {
            Console.Error.WriteLine($"ossuary: connection from {peer} failed: {ex.Message}");
            return ExitCodes.Failure;
        }
    }

    /// <summary>
    /// The session itself: the exit code --once would end with, before disposal has had its say, and
    /// whether every byte of stdin was handed to the connection (the session claims them delivered).
    /// </summary>
    private static async Task<(int Outcome, bool StdinHandedOver)> ServeSecuredAsync(SocketPipe pipe, OssuaryDuplexPipe secure, string peer, ServeOptions serve, CancellationToken cancellationToken)
    {
        OssuaryPublicKey? client = secure.Feature.RemotePublicKey;
        Console.Error.WriteLine($"ossuary: connection from {peer}, client key {client?.ToString() ?? "anonymous"}");
        if (serve.Echo)
        {
            if (await PlaintextPump.EchoAsync(secure, cancellationToken) is > 0 and long unechoed)
            {
                Console.Error.WriteLine($"ossuary: connection from {peer}: the client closed the connection before its last {unechoed} bytes were echoed; they were not sent back");
                return (ExitCodes.Failure, false);
            }

            Console.Error.WriteLine($"ossuary: connection from {peer} closed");
            return (ExitCodes.Success, false);
        }

        NetcatResult session = await Netcat.RunAsync(secure, pipe, serve.Wait, cancellationToken);
        switch (session.End)
        {
            case NetcatEnd.ClosedOverLateData:
                Console.Error.WriteLine($"ossuary: connection from {peer}: {session.DescribeLate("the client")}");
                return (ExitCodes.Failure, true);
            case NetcatEnd.ClosedUnconfirmed:
                Console.Error.WriteLine($"ossuary: connection from {peer}: {session.DescribeUnconfirmed("the client")}");
                return (ExitCodes.Failure, true);
            case NetcatEnd.ClosedUnanswered:
                Console.Error.WriteLine(
                    $"ossuary: connection from {peer}: nothing came from the client for {CliOptions.Describe(serve.Wait)} after the end of stdin; " +
                    "closed it (anything it sends later is lost; --wait forever waits until the client closes)");
                return (ExitCodes.Success, true);
            case NetcatEnd.PeerClosedBeforeEndOfInput when serve.Once:
                Console.Error.WriteLine($"ossuary: connection from {peer} closed by the client before the end of stdin; the rest of stdin was not sent");
                return (ExitCodes.Failure, false);
            case NetcatEnd.PeerClosedBeforeEndOfInput:
                Console.Error.WriteLine($"ossuary: connection from {peer} closed by the client before the end of stdin; what was in flight to it may not have arrived, the rest of stdin goes to the next connection");
                return (ExitCodes.Success, false);
            default:
                Console.Error.WriteLine($"ossuary: connection from {peer} closed");
                return (ExitCodes.Success, true);
        }
    }
}
