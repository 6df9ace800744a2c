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
/// The server's stop line counts readings kept under a number their device had used for another
/// (event 1723), as <c>consume</c>'s does: they were among "stored" with nothing to say the device
/// had restarted its numbering.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryStopLineTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-stopline-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task TheStopLineNamesReadingsStoredUnderAReusedNumber() => ReusedAsync().WaitAsync(HardLimit);

    private async Task ReusedAsync()
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
        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, int.Parse(listening.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)), options, budget.Token))
        {
            await connection.Transport.Output.WriteAsync("sensor=temp value=1 seq=1 ts=1700000000000\nsync\n"u8.ToArray(), budget.Token);
            Assert.Equal("ok 1\n", await ReadToAsync(connection.Transport.Input, "\n", budget.Token));
            await connection.Transport.Output.WriteAsync("sensor=temp value=2 seq=1 ts=1700000001000\nsync\n"u8.ToArray(), budget.Token);
            Assert.Equal("ok 2\n", await ReadToAsync(connection.Transport.Input, "\n", budget.Token));
        }

        await server.SignalAsync("TERM");
        ToolResult stopped = await server.WaitForExitAsync();
        Assert.True(stopped.ExitCode == 0, $"exit {stopped.ExitCode}\n{stopped.Stdout}\n{stopped.Stderr}");
        Assert.Contains("stopped; 2 reading(s) stored (1 of them under a sequence number", stopped.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Reads up to and including <paramref name="end"/>, or (null) to the end of the input.</summary>
    private static async Task<string> ReadToAsync(PipeReader input, string? end, CancellationToken cancellationToken)
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
