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
        var port = new Option<int>("--port", "-p") { Description = "TCP port to listen on.", Required = true };
        var bind = new Option<string>("--bind") { Description = "Address to bind.", DefaultValueFactory = _ => "0.0.0.0" };
        var echo = new Option<bool>("--echo") { Description = "Send every connection's bytes back instead of using stdin/stdout." };
        var once = new Option<bool>("--once") { Description = "Exit after the first connection ends." };
        var wait = new Option<double>("--wait") { Description = "Seconds to keep receiving after the end of stdin before closing.", DefaultValueFactory = _ => 1.0 };
        var trust = new ServerTrust();
        var command = new Command("listen", "Accept Ossuary connections: the client's bytes go to stdout, stdin goes to the client.") { port, bind, echo, once, wait };
        trust.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            OssuaryServerOptions options = trust.CreateOptions(parse, out OssuaryIdentity identity);
            using (identity)
            {
                using Socket listener = SocketPipe.Listen(parse.GetValue(bind)!, parse.GetValue(port));
                string mode = options.Mode == OssuaryServerMode.Authenticated ? $"authenticated, {options.AuthorizedClientKeys.Count} client key(s)" : "unauthenticated";
                Console.Error.WriteLine($"ossuary: listening on {listener.LocalEndPoint} ({mode}); server key {identity.PublicKey}");
                var serve = new ServeOptions(options, parse.GetValue(echo), TimeSpan.FromSeconds(parse.GetValue(wait)));
                var running = new List<Task>();
                while (true)
                {
                    Socket socket = await listener.AcceptAsync(cancellationToken);
                    Task<Outcome> connection = ServeAsync(socket, serve, cancellationToken);
                    if (serve.Echo && !parse.GetValue(once))
                    {
                        running.Add(connection); // echo connections run side by side
                        running.RemoveAll(t => t.IsCompleted);
                    }
                    else
                    {
                        // --once ends with the first connection that got past the handshake: a
                        // refused client (unknown key, port scanner) must not end the server.
                        Outcome outcome = await connection;
                        if (parse.GetValue(once) && outcome != Outcome.Refused)
                        {
                            return outcome == Outcome.Closed ? ExitCodes.Success : ExitCodes.Failure;
                        }
                    }
                }
            }
        }));
        return command;
    }

    private sealed record ServeOptions(OssuaryServerOptions Server, bool Echo, TimeSpan Wait);

    private enum Outcome
    {
        /// <summary>The handshake failed or the client's key was not admitted.</summary>
        Refused,

        /// <summary>The connection was established and ended cleanly.</summary>
        Closed,

        /// <summary>The connection was established and then failed.</summary>
        Failed,
    }

    /// <summary>One connection; its failures are reported and never end the server.</summary>
    private static async Task<Outcome> ServeAsync(Socket socket, ServeOptions serve, CancellationToken cancellationToken)
    {
        await using var pipe = new SocketPipe(socket);
        string peer = pipe.RemoteEndPoint?.ToString() ?? "?";
        OssuaryDuplexPipe secure;
        try
        {
            secure = await OssuaryDuplexPipe.AcceptAsync(pipe, serve.Server, cancellationToken);
        }
        catch (OssuaryException ex)
        {
            Console.Error.WriteLine($"ossuary: connection from {peer} refused ({ex.Reason}): {ex.Message}");
            return Outcome.Refused;
        }

        try
        {
            await using (secure)
            {
                OssuaryPublicKey? client = secure.Feature.RemotePublicKey;
                Console.Error.WriteLine($"ossuary: connection from {peer}, client key {client?.ToString() ?? "anonymous"}");
                if (serve.Echo)
                {
                    await PlaintextPump.EchoAsync(secure, cancellationToken);
                }
                else
                {
                    await Netcat.RunAsync(secure, serve.Wait, cancellationToken);
                }

                Console.Error.WriteLine($"ossuary: connection from {peer} closed");
            }

            return Outcome.Closed;
        }
        catch (OssuaryException ex)
        {
            Console.Error.WriteLine($"ossuary: connection from {peer} failed ({ex.Reason}): {ex.Message}");
            return Outcome.Failed;
        }
        catch (IOException ex)
        {
            Console.Error.WriteLine($"ossuary: connection from {peer} failed: {ex.Message}");
            return Outcome.Failed;
        }
    }
}
