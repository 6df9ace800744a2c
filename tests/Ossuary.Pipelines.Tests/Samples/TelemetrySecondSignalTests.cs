using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Tests.Cli;
using Ossuary.Samples.Telemetry.Keys;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// <c>server</c>'s second signal gives up a stop that waits (here for a device that does not answer the
/// server's Disconnect, which Kestrel waits 30 s for). With every reading received already stored, nothing
/// was lost: the tool says so and exits 0, where it said "0 reading(s) ... were not stored" and exited 1.
/// SIGQUIT, which a terminal sends with Ctrl+\, counts as a second signal as SIGTERM does.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetrySecondSignalTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-second-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    [InlineData("QUIT")]
    public Task ASecondSignalWhenEveryReadingIsStoredExitsZeroAndSaysNothingWasLost(string second) => SecondSignalAsync(second).WaitAsync(HardLimit);

    private async Task SecondSignalAsync(string second)
    {
        using var budget = new CancellationTokenSource(HardLimit);
        Fleet fleet = Fleet.Generate(Path.Combine(_directory, "fleet"), 1);
        using ToolProcess server = ToolProcess.StartInterruptible(Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), "telemetry server", _directory,
            "server", "--port", "0", "--db", "telemetry.db", "--summary-seconds", "86400");
        Match listening = await server.WaitForStdoutLineAsync(new Regex(@"^listening on 127\.0\.0\.1:(\d+) .*$", RegexOptions.Multiline), HardLimit);

        using OssuaryIdentity serverKey = KeyFiles.ReadSecretKey(fleet.ServerKeyPath);
        using OssuaryIdentity device = KeyFiles.ReadSecretKey(Path.Combine(fleet.DevicesDirectory, Fleet.DeviceName(0) + ".key"));
        var options = new OssuaryClientOptions { Identity = device };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, int.Parse(listening.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)), options, budget.Token);

        // Two readings, stored: the server's "ok 2" says so.
        await connection.Transport.Output.WriteAsync("sensor=temp value=1 seq=1\nsensor=temp value=2 seq=2\nsync\n"u8.ToArray(), budget.Token);
        Assert.Equal("ok 2\n", await ReadToAsync(connection.Transport.Input, "\n", budget.Token));

        // The first signal stops the server: the device is sent a Disconnect (its input ends), and does
        // not answer it, so the stop waits for the device.
        await server.SignalAsync("TERM");
        Assert.Equal("", await ReadToAsync(connection.Transport.Input, null, budget.Token));

        await server.SignalAsync(second);
        ToolResult stopped = await server.WaitForExitAsync();
        Assert.True(stopped.ExitCode == 0, $"exit {stopped.ExitCode}\n{stopped.Stdout}\n{stopped.Stderr}");
        Assert.Contains("every reading received was stored", stopped.Stdout, StringComparison.Ordinal);
        Assert.Contains("stopped; 2 reading(s) stored", stopped.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Reads up to and including <paramref name="end"/>, or (null) to the end of the input.</summary>
    internal static async Task<string> ReadToAsync(PipeReader input, string? end, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            string text = Encoding.UTF8.GetString(read.Buffer.ToArray());
            if (end is not null && text.IndexOf(end, StringComparison.Ordinal) is int at and >= 0)
            {
                input.AdvanceTo(read.Buffer.GetPosition(at + end.Length));
                return text[..(at + end.Length)];
            }

            if (read.IsCompleted)
            {
                input.AdvanceTo(read.Buffer.End);
                return text;
            }

            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }
}
