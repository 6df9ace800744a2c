using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net.Sockets;
using Ossuary.Cli.Net;
using Ossuary.Cli.Transfer;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Commands;

/// <summary>
/// <c>ossuary demo</c>: a server and a client in one process over loopback TCP, through the
/// pipes adapter. Needs nothing else installed.
/// </summary>
internal static class DemoCommand
{
    private const int BulkMiB = 256;

    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    public static Command Create()
    {
        var command = new Command("demo", "Run a server and a client over loopback and show what Ossuary does.");
        command.SetAction((_, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Limit);

            // The server's task writes too: one writer, synchronized as Console.Out is.
            using TextWriter report = TextWriter.Synchronized(new StdoutReport("the demo's report"));
            try
            {
                await RunAsync(report, timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Our own limit, not a Ctrl+C: "interrupted" told the user they had stopped it.
                throw new CliException($"the demo did not finish within its {Limit.TotalSeconds:0} s limit (a slow or busy machine?); stopped it");
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static async Task RunAsync(TextWriter report, CancellationToken cancellationToken)
    {
        using OssuaryIdentity serverKey = OssuaryIdentity.Generate();
        using OssuaryIdentity clientKey = OssuaryIdentity.Generate();
        report.WriteLine($"server identity: {serverKey.PublicKey}");
        report.WriteLine($"client identity: {clientKey.PublicKey}");

        var serverOptions = new OssuaryServerOptions { Identity = serverKey };
        serverOptions.AuthorizedClientKeys.Add(clientKey.PublicKey);
        var clientOptions = new OssuaryClientOptions { Identity = clientKey };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);

        using Socket listener = SocketPipe.Listen("127.0.0.1", 0);
        var server = new HostPort("127.0.0.1", ((System.Net.IPEndPoint)listener.LocalEndPoint!).Port);
        report.WriteLine($"server listening on {server} (authenticated: it admits only the client's key)");
        Task serving = ServeAsync(listener, serverOptions, report, cancellationToken);

        await using (SocketPipe socket = await SocketPipe.ConnectAsync(server, cancellationToken))
        await using (OssuaryDuplexPipe client = await OssuaryDuplexPipe.ConnectAsync(socket, clientOptions, cancellationToken))
        {
            report.WriteLine($"handshake: 3 packets in {client.Feature.HandshakeDuration.TotalMilliseconds:0.0} ms; server proved key {client.Feature.RemotePublicKey}");
            foreach (string message in new[] { "temperature=21.5C", "door=closed", "battery=87%" })
            {
                report.WriteLine($"  client -> server: {message}");
                string? answer = await TransferProtocol.TryWriteLineAsync(client.Output, $"MSG {message}\n", cancellationToken)
                    ? await TransferProtocol.ReadLineAsync(client.Input, cancellationToken)
                    : null;
                if (answer is null)
                {
                    throw new CliException("the demo server closed the connection without answering");
                }

                report.WriteLine($"  server -> client: {answer}");
            }

            await MeasureThroughputAsync(client, report, cancellationToken);
            await client.Output.CompleteAsync();
        }

        await serving;
        report.WriteLine("closed cleanly: the client sent Disconnect and the server saw a clean end of stream.");
    }

    private static async Task MeasureThroughputAsync(OssuaryDuplexPipe client, TextWriter report, CancellationToken cancellationToken)
    {
        long total = BulkMiB * 1024L * 1024L;
        if (!await TransferProtocol.TryWriteLineAsync(client.Output, $"BULK {total.ToString(CultureInfo.InvariantCulture)}\n", cancellationToken))
        {
            throw new CliException("the demo server closed the connection before the bulk transfer");
        }

        byte[] chunk = new byte[16 * 1024];
        Random.Shared.NextBytes(chunk);
        var clock = Stopwatch.StartNew();
        for (long sent = 0; sent < total; sent += chunk.Length)
        {
            if ((await client.Output.WriteAsync(chunk, cancellationToken)).IsCompleted)
            {
                throw new CliException($"the demo server closed the connection after {sent} of the {total} bulk bytes");
            }
        }

        string? done = await TransferProtocol.ReadLineAsync(client.Input, cancellationToken);
        clock.Stop();
        if (done != "DONE")
        {
            throw new CliException($"the demo server did not confirm the bulk transfer (said '{done}')");
        }

        report.WriteLine($"throughput: {BulkMiB} MiB in 16 KiB writes, encrypted, sent and decrypted in {clock.Elapsed.TotalSeconds:0.00} s = {total / 1e6 / clock.Elapsed.TotalSeconds:0} MB/s");
    }

    private static async Task ServeAsync(Socket listener, OssuaryServerOptions options, TextWriter report, CancellationToken cancellationToken)
    {
        await using var pipe = new SocketPipe(await listener.AcceptAsync(cancellationToken));
        await using OssuaryDuplexPipe connection = await OssuaryDuplexPipe.AcceptAsync(pipe, options, cancellationToken);
        report.WriteLine($"server: client proved key {connection.Feature.RemotePublicKey}");
        while (await TransferProtocol.ReadLineAsync(connection.Input, cancellationToken) is { } line)
        {
            if (line.StartsWith("MSG ", StringComparison.Ordinal))
            {
                await TransferProtocol.TryWriteLineAsync(connection.Output, $"got '{line[4..]}'\n", cancellationToken);
            }
            else if (line.StartsWith("BULK ", StringComparison.Ordinal))
            {
                await DiscardAsync(connection.Input, long.Parse(line[5..], CultureInfo.InvariantCulture), cancellationToken);
                await TransferProtocol.TryWriteLineAsync(connection.Output, "DONE\n", cancellationToken);
            }
        }
    }

    private static async Task DiscardAsync(PipeReader input, long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            long take = Math.Min(count, read.Buffer.Length);
            input.AdvanceTo(read.Buffer.GetPosition(take));
            count -= take;
            if (read.IsCompleted && count > 0)
            {
                throw new CliException("the demo client stopped in the middle of the bulk transfer");
            }
        }
    }
}
