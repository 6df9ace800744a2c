using System.Text.RegularExpressions;
using NATS.Client.JetStream;
using NATS.Net;
using Ossuary.Pipelines.Tests.Cli;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// <c>consume</c> stops as it says it does: on Ctrl+C or a service manager's SIGTERM it finishes, reports
/// and exits 0; and what it reports as stored is what the store did not have before.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryConsumeStopTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-consume-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    public Task ConsumeStopsCleanlyOnASignal(string signal) => StopAsync(signal).WaitAsync(HardLimit);

    private async Task StopAsync(string signal)
    {
        const int Readings = 3;
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(new JetStreamOptions { Url = nats.Url }, budget.Token))
        {
            string device = new('a', 64);
            await publisher.WriteAsync(Enumerable.Range(1, Readings).Select(seq => new StoredReading(device, seq, "temp", seq, seq)).ToArray(), budget.Token);
        }

        string database = Path.Combine(_directory, "telemetry.db");
        using ToolProcess consume = ToolProcess.StartInterruptible(Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), "telemetry consume", _directory,
            "consume", "--nats", nats.Url, "--db", database);
        await consume.WaitForStdoutLineAsync(new Regex("^storing readings .*$", RegexOptions.Multiline), HardLimit);
        while (!File.Exists(database) || ReadingQueries.Totals(database).Sum(t => t.Readings) < Readings)
        {
            await Task.Delay(50, budget.Token);
        }

        // Within the tool's own bound, not the test's: one that never stops is then killed and named
        // with what it printed, not lost in the test's bare timeout.
        await consume.SignalAsync(signal);
        ToolResult result = await consume.WaitForExitAsync();

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}\n{result.Stdout}\n{result.Stderr}");
        Assert.Contains($"stopped; {Readings} reading(s) stored, 0 already stored (redelivered) and ignored.", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public Task ConsumeLeavesAMessageThatIsNotAReadingInTheStreamAndSaysSo() => HeldAsync().WaitAsync(HardLimit);

    private async Task HeldAsync()
    {
        // A message on the readings' subjects that consume cannot decode (another program's, a newer
        // version's, a corrupted one) was acknowledged with its batch, which deletes it from the work
        // queue: a reading in a format this consume does not know was gone for good, with a warning.
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        string device = new('a', 64);
        await using var client = new NatsClient(nats.Url);
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(new JetStreamOptions { Url = nats.Url }, budget.Token))
        {
            await client.CreateJetStreamContext().PublishAsync("telemetry.readings.stranger", "not a reading"u8.ToArray(), cancellationToken: budget.Token);
            await publisher.WriteAsync([new StoredReading(device, 1, "temp", 1, 1), new StoredReading(device, 2, "temp", 2, 2)], budget.Token);
        }

        string database = Path.Combine(_directory, "telemetry.db");
        using ToolProcess consume = ToolProcess.StartInterruptible(Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), "telemetry consume", _directory,
            "consume", "--nats", nats.Url, "--db", database);
        await consume.WaitForStdoutLineAsync(new Regex("^storing readings .*$", RegexOptions.Multiline), HardLimit);
        while (!File.Exists(database) || ReadingQueries.Totals(database).Sum(t => t.Readings) < 2)
        {
            await Task.Delay(50, budget.Token);
        }

        // The readings are stored, so the message published before them was taken (and answered) too.
        await consume.SignalAsync("INT");
        ToolResult result = await consume.WaitForExitAsync();

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}\n{result.Stdout}\n{result.Stderr}");
        const string Stopped = "stopped; 2 reading(s) stored, 0 already stored (redelivered) and ignored; 1 message(s) that were not readings left in the stream (event 1710).";
        Assert.True(result.Stdout.Contains(Stopped, StringComparison.Ordinal), $"expected '{Stopped}' in:\n{result.Stdout}");
        Assert.Contains("fail: Ossuary.Samples.Telemetry.JetStream.JetStreamStoreConsumer[1710]", result.Stdout, StringComparison.Ordinal);

        // Still in the stream, for a consume that reads it (or an operator) to take: nothing was deleted.
        INatsJSStream stream = await client.CreateJetStreamContext().GetStreamAsync("TELEMETRY", cancellationToken: budget.Token);
        Assert.Equal((1L, 1UL), (stream.Info.State.Messages, stream.Info.State.FirstSeq)); // the stranger, published first
    }

    [Fact]
    public Task ConsumeCountsReadingsTheStoreHadAlreadyApartFromThoseItStored() => CountAsync().WaitAsync(HardLimit);

    private async Task CountAsync()
    {
        // An earlier consume stored readings 1-3 and died before acknowledging them: JetStream delivers
        // them again with 4 and 5. The store ignores the three; consume said "5 reading(s) stored".
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        string device = new('a', 64);
        StoredReading[] readings = [.. Enumerable.Range(1, 5).Select(seq => new StoredReading(device, seq, "temp", seq, seq))];
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(new JetStreamOptions { Url = nats.Url }, budget.Token))
        {
            await publisher.WriteAsync(readings, budget.Token);
        }

        string database = Path.Combine(_directory, "telemetry.db");
        await using (SqliteReadingStore earlier = SqliteReadingStore.Open(database))
        {
            Assert.Equal(3, await earlier.WriteAsync(readings[..3], budget.Token));
            Assert.Equal(0, await earlier.WriteAsync(readings[..1], budget.Token)); // the store's own count: new ones only
        }

        using ToolProcess consume = ToolProcess.StartInterruptible(Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), "telemetry consume", _directory,
            "consume", "--nats", nats.Url, "--db", database);
        await consume.WaitForStdoutLineAsync(new Regex("^storing readings .*$", RegexOptions.Multiline), HardLimit);
        while (ReadingQueries.Totals(database).Sum(t => t.Readings) < readings.Length)
        {
            await Task.Delay(50, budget.Token);
        }

        // Readings 4 and 5 are stored, so 1-3, delivered before them, were taken too.
        await consume.SignalAsync("INT");
        ToolResult result = await consume.WaitForExitAsync();

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}\n{result.Stdout}\n{result.Stderr}");
        Assert.Contains("stopped; 2 reading(s) stored, 3 already stored (redelivered) and ignored.", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(readings.Length, ReadingQueries.Totals(database).Single().Readings);
    }
}
