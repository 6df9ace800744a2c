using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Threading.Channels;
using Ossuary.Pipelines;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>
/// The child process (<c>--generator N</c>): N devices, driven by the parent over stdin and stdout
/// one line at a time (<see cref="GeneratorProtocol"/>). Progress goes to stderr, which the parent shows.
/// Stdin reaching its end means the parent is gone (crashed, killed, Ctrl-C): the child exits at once,
/// so no orphan keeps 10,000 sockets open.
/// </summary>
internal static class GeneratorMode
{
    public static async Task<int> RunAsync(int devices)
    {
        var commands = Channel.CreateUnbounded<string>();
        var window = new SendWindow();
        var stdin = new Thread(() => ReadParent(commands.Writer, window)) { IsBackground = true, Name = "parent commands" };
        stdin.Start();
        TextWriter stdout = Console.Out;
        try
        {
            // The keys are made here and only the public halves cross to the parent, which admits them.
            var identities = Enumerable.Range(0, devices).Select(_ => OssuaryIdentity.Generate()).ToList();
            foreach (OssuaryIdentity identity in identities)
            {
                await stdout.WriteLineAsync($"{GeneratorProtocol.Key} {identity.PublicKey}");
            }

            await stdout.WriteLineAsync(GeneratorProtocol.KeysDone);
            await stdout.FlushAsync();
            string[] server = Expect(await commands.Reader.ReadAsync(), GeneratorProtocol.Server, 3);
            var endPoint = IPEndPoint.Parse(server[1]);
            var serverKey = OssuaryPublicKey.Parse(server[2]);
            var fleet = identities.Select(i => new BenchDevice(i, endPoint, serverKey)).ToList();
            using var budget = new CancellationTokenSource(TimeSpan.FromMinutes(30));
            while (true)
            {
                string[] command = (await commands.Reader.ReadAsync()).Split(' ');
                switch (command[0])
                {
                    case GeneratorProtocol.WarmUp:
                        // A few devices connect and leave, so that the idle measurement that follows
                        // sees code compiled, threads started and pools filled.
                        List<BenchDevice> some = fleet.Take(Int(command[1])).ToList();
                        await Fleet.ForAllAsync(some, 256, d => d.ConnectAsync(budget.Token));
                        await Fleet.ForAllAsync(some, 256, d => d.DisconnectAsync().AsTask());
                        await Reply(stdout, GeneratorProtocol.WarmedUp);
                        break;
                    case GeneratorProtocol.Connect:
                        await Fleet.ForAllAsync(fleet, 256, d => d.ConnectAsync(budget.Token));
                        await Reply(stdout, $"{GeneratorProtocol.Connected} {fleet.Sum(d => d.ConnectFailures)}");
                        break;
                    case GeneratorProtocol.Send:
                        (long sent, double cpu) = await SendAsync(fleet, window, Seconds(command[1]), Int(command[2]), long.Parse(command[3], CultureInfo.InvariantCulture));
                        await Reply(stdout, string.Create(CultureInfo.InvariantCulture, $"{GeneratorProtocol.Sent} {sent} {cpu:R}"));
                        break;
                    case GeneratorProtocol.Storm:
                        int before = fleet.Sum(d => d.ConnectFailures);
                        TimeSpan cpuBefore = Cpu();
                        await Fleet.ForAllAsync(fleet, fleet.Count, d => d.DisconnectAsync().AsTask());
                        await Fleet.ForAllAsync(fleet, fleet.Count, async d =>
                        {
                            await d.ConnectAsync(budget.Token);
                            await d.SendAsync(1);
                        });
                        await Reply(stdout, string.Create(CultureInfo.InvariantCulture, $"{GeneratorProtocol.Stormed} {fleet.Sum(d => d.ConnectFailures) - before} {(Cpu() - cpuBefore).TotalSeconds:R}"));
                        break;
                    case GeneratorProtocol.Finish:
                        // A clean Disconnect from each device, then what each sent: the parent counts loss from it.
                        await Fleet.ForAllAsync(fleet, fleet.Count, d => d.DisposeAsync().AsTask());
                        foreach (BenchDevice device in fleet)
                        {
                            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{GeneratorProtocol.Device} {device.KeyHex} {device.Sent}"));
                        }

                        await Reply(stdout, GeneratorProtocol.Done);
                        return 0;
                    default:
                        throw new InvalidOperationException($"unknown command '{command[0]}'");
                }
            }
        }
        catch (Exception ex)
        {
            await Console.Error.WriteLineAsync($"generator failed: {ex}");
            return 1;
        }
    }

    /// <summary>
    /// Every device sends batches back to back until the time is up, but the fleet keeps at most
    /// <paramref name="inFlight"/> readings ahead of what the server has queued (the parent reports
    /// that count every 20 ms). Without the window the kernel's loopback TCP buffers (MBs per
    /// connection) absorb seconds of sending, the devices look faster than the server, and draining
    /// them takes minutes.
    /// </summary>
    private static async Task<(long Sent, double CpuSeconds)> SendAsync(List<BenchDevice> fleet, SendWindow window, TimeSpan duration, int perFlush, long inFlight)
    {
        long sentBefore = fleet.Sum(d => d.Sent);
        window.Reset();
        TimeSpan cpuBefore = Cpu();
        var stop = DateTime.UtcNow + duration;
        await Fleet.ForAllAsync(fleet, fleet.Count, async d =>
        {
            while (DateTime.UtcNow < stop)
            {
                if (window.Ahead > inFlight)
                {
                    await Task.Delay(5);
                    continue;
                }

                await d.SendAsync(perFlush);
                window.Sent(perFlush);
            }
        });
        return (fleet.Sum(d => d.Sent) - sentBefore, (Cpu() - cpuBefore).TotalSeconds);
    }

    private static void ReadParent(ChannelWriter<string> commands, SendWindow window)
    {
        while (Console.In.ReadLine() is { } line)
        {
            if (line.StartsWith(GeneratorProtocol.Ingested + " ", StringComparison.Ordinal))
            {
                window.Ingested(long.Parse(line.AsSpan(GeneratorProtocol.Ingested.Length + 1), CultureInfo.InvariantCulture));
            }
            else
            {
                commands.TryWrite(line);
            }
        }

        Console.Error.WriteLine("generator: the parent closed stdin (it ended or crashed); exiting");
        Environment.Exit(3);
    }

    private static async Task Reply(TextWriter stdout, string line)
    {
        await stdout.WriteLineAsync(line);
        await stdout.FlushAsync();
    }

    private static string[] Expect(string line, string command, int parts)
    {
        string[] split = line.Split(' ');
        return split[0] == command && split.Length == parts ? split : throw new InvalidOperationException($"expected '{command}', got '{line}'");
    }

    private static TimeSpan Seconds(string value) => TimeSpan.FromSeconds(Int(value));

    private static int Int(string value) => int.Parse(value, CultureInfo.InvariantCulture);

    private static TimeSpan Cpu()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }
}
