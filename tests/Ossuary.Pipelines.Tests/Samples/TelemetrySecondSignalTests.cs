using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Tests.Cli;
using Ossuary.Samples.Telemetry.Keys;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// <c>server</c>'s second INT, TERM or QUIT gives up a stop that waits: exit 1 naming how many readings
/// received were not stored, or exit 0 saying so when every one was. Each stop is held by something the
/// test holds and cannot lose its grip on: a SQLite write lock on the server's database (the store cannot
/// commit), or a scrape whose request headers never end (Kestrel waits for a request it has begun to read).
/// </summary>
/// <remarks>
/// Both holds last at most 30 s, Microsoft.Data.Sqlite's busy timeout and Kestrel's request-headers timeout:
/// the steps from the hold to the second signal are a few local calls. Were that ever exceeded, the test
/// fails with the tool's output (the store's "database is locked", or a stop that ended by itself), it
/// does not hang. The old test filled the server's socket with a device that read nothing (thousands of
/// answers, each a trip through the store's queue), which hung in about one case in thirty.
/// </remarks>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetrySecondSignalTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-second-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    [InlineData("QUIT")]
    public Task ASecondSignalWithReadingsUnstoredExitsOneAndNamesHowMany(string signal) => UnstoredAsync(signal).WaitAsync(HardLimit);

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    [InlineData("QUIT")]
    public Task ASecondSignalWithEveryReadingStoredExitsZeroAndClosesTheDatabase(string signal) => AllStoredAsync(signal).WaitAsync(HardLimit);

    private async Task UnstoredAsync(string signal)
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using Running running = await StartAsync(budget.Token);

        // The test holds the database's write lock: the store's next batch waits for it.
        await using var holder = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = running.Database, Pooling = false }.ToString());
        await holder.OpenAsync(budget.Token);
        await using (SqliteCommand begin = holder.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE";
            await begin.ExecuteNonQueryAsync(budget.Token);
        }

        await running.Device.Transport.Output.WriteAsync("sensor=temp value=3 seq=3\nsensor=temp value=4 seq=4\nsensor=temp value=5 seq=5\n"u8.ToArray(), budget.Token);
        await running.ScrapeUntilAsync(received: 5, budget.Token);

        ToolResult stopped = await running.StopTwiceAsync(signal);
        Assert.True(stopped.ExitCode == 1, $"exit {stopped.ExitCode}\n{stopped.Stdout}\n{stopped.Stderr}");
        Assert.Contains("stopped by a second signal before the store had every reading: 3 reading(s) received were not stored", stopped.Stderr, StringComparison.Ordinal);

        // The store was writing when the tool exited, and is left open (see ServerCommand): what it
        // committed is whole and its unfinished batch is not there, as SQLite finds the file at its next open.
        await using (SqliteCommand rollback = holder.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK";
            await rollback.ExecuteNonQueryAsync(budget.Token);
        }

        await holder.CloseAsync();
        Assert.Equal(("ok", 2L), await CheckAsync(running.Database, budget.Token));
    }

    private async Task AllStoredAsync(string signal)
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using Running running = await StartAsync(budget.Token);

        // A scrape begun and never finished: Kestrel's stop waits for the request (its headers never end).
        using var scraper = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await scraper.ConnectAsync(running.Metrics, budget.Token);
        await scraper.SendAsync("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"u8.ToArray(), budget.Token);

        // On loopback a sent byte is in the server's receive queue at once: an empty queue then means that
        // Kestrel has read the request's start, and a stop that begins now finds a request under way.
        while (await ReceiveQueueAsync(running.Metrics.Port, budget.Token) != 0)
        {
            await Task.Delay(20, budget.Token);
        }

        ToolResult stopped = await running.StopTwiceAsync(signal);
        Assert.True(stopped.ExitCode == 0, $"exit {stopped.ExitCode}\n{stopped.Stdout}\n{stopped.Stderr}");
        Assert.Contains("stop cut short by a second signal; every reading received was stored.", stopped.Stdout, StringComparison.Ordinal);
        Assert.Contains("stopped; 2 reading(s) stored", stopped.Stdout, StringComparison.Ordinal);

        // The store was idle: the tool closed it, and SQLite, closing the last connection, folds the log into
        // the file and removes it. Left open, the -wal and -shm files stayed beside it.
        Assert.False(File.Exists(running.Database + "-wal"), $"{running.Database}-wal is left: the store was not closed\n{stopped.Stdout}");
        Assert.False(File.Exists(running.Database + "-shm"), $"{running.Database}-shm is left: the store was not closed\n{stopped.Stdout}");
        Assert.Equal(("ok", 2L), await CheckAsync(running.Database, budget.Token));
    }

    /// <summary>A server storing in telemetry.db with metrics served, and a device whose first two readings it has stored.</summary>
    private async Task<Running> StartAsync(CancellationToken cancellationToken)
    {
        Fleet fleet = Fleet.Generate(Path.Combine(_directory, "fleet"), 1);
        ToolProcess server = ToolProcess.StartInterruptible(Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), "telemetry server", _directory,
            "server", "--port", "0", "--db", "telemetry.db", "--summary-seconds", "86400", "--metrics-port", FreePort().ToString(CultureInfo.InvariantCulture));
        try
        {
            Match listening = await server.WaitForStdoutLineAsync(new Regex(@"^listening on 127\.0\.0\.1:(\d+) .*$", RegexOptions.Multiline), HardLimit);
            Match metrics = await server.WaitForStdoutLineAsync(new Regex(@"^metrics at http://127\.0\.0\.1:(\d+)/metrics$", RegexOptions.Multiline), HardLimit);
            using OssuaryIdentity serverKey = KeyFiles.ReadSecretKey(fleet.ServerKeyPath);
            using OssuaryIdentity device = KeyFiles.ReadSecretKey(Path.Combine(fleet.DevicesDirectory, Fleet.DeviceName(0) + ".key"));
            var options = new OssuaryClientOptions { Identity = device };
            options.TrustedServerKeys.Add(serverKey.PublicKey);
            OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port(listening)), options, cancellationToken);
            var running = new Running(server, connection, new IPEndPoint(IPAddress.Loopback, Port(metrics)), Path.Combine(_directory, "telemetry.db"));
            await connection.Transport.Output.WriteAsync("sensor=temp value=1 seq=1\nsensor=temp value=2 seq=2\nsync\n"u8.ToArray(), cancellationToken);
            Assert.Equal("ok 2\n", await ReadLineAsync(connection.Transport.Input, cancellationToken));
            return running;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private static int Port(Match match) => int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);

    /// <summary>A port nothing listens on now (the tool's 0 means no metrics at all).</summary>
    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The bytes waiting in the receive queue of the server's end of the connection on <paramref name="port"/>.</summary>
    private static async Task<long> ReceiveQueueAsync(int port, CancellationToken cancellationToken)
    {
        using var ss = Process.Start(new ProcessStartInfo("ss")
        {
            ArgumentList = { "-tnH", "state", "established", $"( sport = :{port} )" },
            RedirectStandardOutput = true,
        })!;
        string text = await ss.StandardOutput.ReadToEndAsync(cancellationToken);
        await ss.WaitForExitAsync(cancellationToken);
        string[] columns = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        Assert.True(columns.Length >= 2, $"ss shows no connection on port {port}: '{text}'");
        return long.Parse(columns[0], CultureInfo.InvariantCulture);
    }

    /// <summary>What <c>PRAGMA integrity_check</c> says of the file from a fresh open, and the readings it holds.</summary>
    private static async Task<(string Integrity, long Readings)> CheckAsync(string database, CancellationToken cancellationToken)
    {
        await using var check = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        await check.OpenAsync(cancellationToken);
        await using SqliteCommand command = check.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        string integrity = (string)(await command.ExecuteScalarAsync(cancellationToken))!;
        command.CommandText = "SELECT count(*) FROM readings";
        return (integrity, (long)(await command.ExecuteScalarAsync(cancellationToken))!);
    }

    private static async Task<string> ReadLineAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            string text = Encoding.UTF8.GetString(read.Buffer.ToArray());
            if (text.IndexOf('\n', StringComparison.Ordinal) is int at and >= 0)
            {
                input.AdvanceTo(read.Buffer.GetPosition(at + 1));
                return text[..(at + 1)];
            }

            Assert.False(read.IsCompleted, $"the connection ended after '{text}'");
            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private sealed class Running(ToolProcess server, OssuaryClientConnection device, IPEndPoint metrics, string database) : IAsyncDisposable
    {
        public OssuaryClientConnection Device => device;

        public IPEndPoint Metrics => metrics;

        public string Database => database;

        /// <summary>Scrapes until the server says it has received <paramref name="received"/> readings.</summary>
        public async Task ScrapeUntilAsync(int received, CancellationToken cancellationToken)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var scrape = new Uri($"http://{metrics}/metrics");
            var pattern = new Regex(@"^telemetry_readings_received_total(?:\{[^}]*\})? (\d+)", RegexOptions.Multiline);
            while (true)
            {
                string text = await http.GetStringAsync(scrape, cancellationToken);
                Match count = pattern.Match(text);
                if (count.Success && long.Parse(count.Groups[1].Value, CultureInfo.InvariantCulture) >= received)
                {
                    return;
                }

                Assert.False(server.HasExited, $"the server exited:\n{server.Stdout}\n{server.Stderr}");
                await Task.Delay(50, cancellationToken);
            }
        }

        /// <summary>
        /// The first signal, then (once the tool says its stop has begun, and has not ended) the second, and the exit.
        /// The same signal twice: Ctrl+C twice, or a service manager's TERM repeated.
        /// </summary>
        public async Task<ToolResult> StopTwiceAsync(string signal)
        {
            await server.SignalAsync(signal);
            await server.WaitForStdoutLineAsync(new Regex(@"^stopping: .*gives that up\.$", RegexOptions.Multiline), HardLimit);
            Assert.False(server.HasExited, $"the server's stop ended before the second signal:\n{server.Stdout}\n{server.Stderr}");
            Assert.DoesNotContain("stopped;", server.Stdout, StringComparison.Ordinal);
            await server.SignalAsync(signal);
            return await server.WaitForExitAsync(TimeSpan.FromSeconds(60));
        }

        public async ValueTask DisposeAsync()
        {
            server.Dispose();
            await device.DisposeAsync();
        }
    }
}
