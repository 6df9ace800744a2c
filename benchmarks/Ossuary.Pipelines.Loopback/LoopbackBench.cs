using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Ossuary.Pipelines.Loopback.Measurements;
using Ossuary.Pipelines.Loopback.Report;
using Ossuary.Pipelines.Loopback.Targets;

namespace Ossuary.Pipelines.Loopback;

/// <summary>
/// Ossuary side by side with plain TCP and SslStream TLS 1.3, over real TCP on 127.0.0.1, in one
/// process and one run (only ratios from one run mean anything on a shared machine).
/// </summary>
public static class LoopbackBench
{
    /// <summary>Runs every measurement, logging progress to <paramref name="log"/>, and returns the figures.</summary>
    public static async Task<BenchReport> RunAsync(BenchSettings settings, TextWriter log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var report = new BenchReport(MachineInfo.Describe(), settings.IsQuick) { LoadAtStart = MachineInfo.LoadAverage() };
        log.WriteLine($"machine: {report.Machine}");
        log.WriteLine($"load average: {report.LoadAtStart}");

        using var keys = new OssuaryKeys();
        using X509Certificate2 certificate = TlsTarget.CreateCertificate();
        await using var tcp = new TcpTarget();
        OssuaryPacketSizes packetSizes = OssuaryPacketSizes.Measure(keys);
        await using var tcpPackets = new TcpPacketsTarget(packetSizes);
        await using KestrelPacketsTarget kestrelPackets = await KestrelPacketsTarget.StartAsync(packetSizes).ConfigureAwait(false);
        await using var aesGcm = new TlsTarget(BenchReport.Reference, TlsCipherSuite.TLS_AES_256_GCM_SHA384, certificate);
        await using var chaCha = new TlsTarget("tls13-chacha", TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256, certificate);
        await using KestrelTcpTarget kestrelTcp = await KestrelTcpTarget.StartAsync().ConfigureAwait(false);
        await using KestrelTlsTarget kestrelTls = await KestrelTlsTarget.StartAsync(certificate).ConfigureAwait(false);
        await using OssuaryKestrelTarget ossuary = await OssuaryKestrelTarget.StartAsync(keys).ConfigureAwait(false);
        await using var raw = new OssuaryRawTarget(keys);
        await using OssuaryKestrelTarget ossuaryLargeBlocks = await OssuaryKestrelTarget.StartAsync(keys, largeBlocks: true).ConfigureAwait(false);

        // Idle memory first, while the process is fresh: pools filled by the bulk transfers would hide allocations.
        // tcp and tcp-kestrel are the floor: what the sockets (and Kestrel) cost before any security layer.
        if (settings.Sections.HasFlag(BenchSections.IdleMemory))
        {
            await MeasureIdleMemoryAsync(report, settings, [("tcp", tcp), ("tcp-kestrel", kestrelTcp), ("tls13", aesGcm), ("tls13-kestrel", kestrelTls), ("ossuary", ossuary), ("ossuary-raw", raw), ("ossuary-64k", ossuaryLargeBlocks)], log, cancellationToken).ConfigureAwait(false);
        }

        // The crypto-only bound and the handshakes over sockets take turns in the same rounds, so
        // that the ceilings below compare figures measured under the same load; ossuary runs right
        // after the two rates its ceiling is made of, and SslStream right after it.
        if (settings.Sections.HasFlag(BenchSections.CryptoBound) || settings.Sections.HasFlag(BenchSections.Handshakes))
        {
            await MeasureHandshakesAsync(report, settings, keys, settings.Sections.HasFlag(BenchSections.Handshakes) ? [("tcp", tcp), ("ossuary", ossuary), ("tls13", aesGcm), ("tcp-packets", tcpPackets), ("tcp-packets-kestrel", kestrelPackets), ("tcp-kestrel", kestrelTcp), ("tls13-kestrel", kestrelTls), ("ossuary-raw", raw)] : [], log, cancellationToken).ConfigureAwait(false);
        }

        HandshakeCeilings.Add(report, settings.Parallelism);

        if (settings.Sections.HasFlag(BenchSections.Throughput))
        {
            await MeasureThroughputAsync(report, settings, [tcp, kestrelTcp, aesGcm, chaCha, kestrelTls, ossuary, raw, ossuaryLargeBlocks], log, cancellationToken).ConfigureAwait(false);
            if (report["tcp.throughput.cpu"] is > 0 and var socketCpu && report["ossuary.throughput.cpu"] is > 0 and var ossuaryCpu && report["ossuary.throughput"] is > 0 and var ossuaryRate)
            {
                // The throughput ceiling of any Ossuary adapter: as many cores busy as the ossuary target
                // had (its MB/s times its CPU per MB), spending per MB only what plain TCP spends (the
                // cheapest way to move bytes over loopback here, both ends) plus the record layer alone.
                double cipher = CipherMeasurement.CpuMicrosecondsPerMegabyte(keys, settings.IsQuick ? 0.5 : 1);
                report.Add("ossuary.cipher.cpu", cipher, "us/MB");
                report.Add("ossuary.throughput.ceiling", ossuaryRate * ossuaryCpu / (socketCpu + cipher), "MB/s");
                log.WriteLine($"  the record layer alone (seal + open, 16 KiB records, one thread): {cipher:N0} us CPU per MB");
            }
        }

        report.LoadAtEnd = MachineInfo.LoadAverage();
        return report;
    }

    private static async Task MeasureIdleMemoryAsync(BenchReport report, BenchSettings settings, (string Name, BenchTarget Target)[] targets, TextWriter log, CancellationToken cancellationToken)
    {
        log.WriteLine($"idle memory, {settings.IdleConnections} connections held open ({settings.IdleRounds} round(s), taking turns, median kept):");
        (string Name, BenchTarget Target)[] chosen = [.. targets.Where(t => settings.MeasuresIdle(t.Target.Name))];
        var results = chosen.ToDictionary(t => t.Name, _ => new List<IdleMemoryMeasurement.Result>());
        for (int round = 0; round < settings.IdleRounds; round++)
        {
            foreach ((string name, BenchTarget target) in chosen)
            {
                IdleMemoryMeasurement.Result idle = await IdleMemoryMeasurement.RunAsync(target, settings.IdleConnections, cancellationToken).ConfigureAwait(false);
                results[name].Add(idle);
                log.WriteLine($"  {target.Name,-14} managed {idle.ManagedPerPair,9:N0} B, working set {idle.WorkingSetPerPair,9:N0} B per connection pair");
            }
        }

        foreach ((string name, _) in chosen)
        {
            report.Add($"{name}.idle.managed", Rounds.Of([.. results[name].Select(r => r.ManagedPerPair)]), "bytes");
            report.Add($"{name}.idle.workingset", Rounds.Of([.. results[name].Select(r => r.WorkingSetPerPair)]), "bytes");
        }
    }

    private static async Task MeasureHandshakesAsync(BenchReport report, BenchSettings settings, OssuaryKeys keys, (string Name, BenchTarget Target)[] targets, TextWriter log, CancellationToken cancellationToken)
    {
        bool cryptoBound = settings.Sections.HasFlag(BenchSections.CryptoBound);
        (string Name, BenchTarget Target)[] chosen = [.. targets.Where(t => settings.Includes(t.Target.Name))];
        log.WriteLine($"handshakes ({(cryptoBound ? "the crypto-only bound: both sides' sessions in memory; " : "")}over sockets: connect, handshake, one byte each way, close; {settings.HandshakeRounds} round(s), taking turns, median kept):");
        double warmUp = Math.Min(0.4, settings.HandshakeSeconds);
        foreach ((_, BenchTarget target) in chosen)
        {
            await HandshakeMeasurement.WarmUpAsync(target, settings.Parallelism, warmUp, settings.IsQuick ? 1.5 : 4, cancellationToken).ConfigureAwait(false);
        }

        var boundOne = new List<CryptoBoundMeasurement.Result>();
        var boundAll = new List<CryptoBoundMeasurement.Result>();
        var sequential = chosen.ToDictionary(t => t.Name, _ => new List<HandshakeMeasurement.Result>());
        var parallel = chosen.ToDictionary(t => t.Name, _ => new List<HandshakeMeasurement.Result>());
        for (int round = 0; round < settings.HandshakeRounds; round++)
        {
            if (cryptoBound)
            {
                CryptoBoundMeasurement.Result one = CryptoBoundMeasurement.Run(keys, 1, settings.CryptoSeconds);
                CryptoBoundMeasurement.Result all = CryptoBoundMeasurement.Run(keys, Environment.ProcessorCount, settings.CryptoSeconds);
                boundOne.Add(one);
                boundAll.Add(all);
                log.WriteLine($"  {"crypto-bound",-14} one thread {one.PerSecond,8:N0}/s ({one.CpuMicroseconds:N0} us CPU each), {Environment.ProcessorCount} threads {all.PerSecond,8:N0}/s");
            }

            foreach ((string name, BenchTarget target) in chosen)
            {
                HandshakeMeasurement.Result one = await HandshakeMeasurement.RunAsync(target, 1, settings.HandshakeSeconds, cancellationToken).ConfigureAwait(false);
                HandshakeMeasurement.Result many = await HandshakeMeasurement.RunAsync(target, settings.Parallelism, settings.HandshakeSeconds, cancellationToken).ConfigureAwait(false);
                sequential[name].Add(one);
                parallel[name].Add(many);
                log.WriteLine($"  {target.Name,-14} sequential {one.PerSecond,8:N0}/s ({one.CpuMicroseconds:N0} us CPU each), {settings.Parallelism} in parallel {many.PerSecond,8:N0}/s ({many.CpuMicroseconds:N0} us CPU each)");
            }
        }

        if (cryptoBound)
        {
            report.Add("ossuary.handshakes.crypto-bound", Rounds.Of([.. boundOne.Select(r => r.PerSecond)]), "handshakes/s");
            report.Add("ossuary.handshakes.crypto-bound.parallel", Rounds.Of([.. boundAll.Select(r => r.PerSecond)]), "handshakes/s");
            report.Add("ossuary.handshakes.crypto-bound.cpu", Rounds.Of([.. boundOne.Select(r => r.CpuMicroseconds)]), "us/handshake");
        }

        foreach ((string name, _) in chosen)
        {
            report.Add($"{name}.handshakes.sequential", Rounds.Of([.. sequential[name].Select(r => r.PerSecond)]), "handshakes/s");
            report.Add($"{name}.handshakes.parallel{settings.Parallelism}", Rounds.Of([.. parallel[name].Select(r => r.PerSecond)]), "handshakes/s");
            report.Add($"{name}.handshakes.cpu", Rounds.Of([.. parallel[name].Select(r => r.CpuMicroseconds)]), "us/handshake");
            report.Add($"{name}.handshakes.alloc", Rounds.Of([.. parallel[name].Select(r => r.AllocatedBytes)]), "bytes/connection");
        }
    }

    private static async Task MeasureThroughputAsync(BenchReport report, BenchSettings settings, BenchTarget[] targets, TextWriter log, CancellationToken cancellationToken)
    {
        BenchTarget[] all = [.. targets.Where(t => settings.Includes(t.Name))];
        foreach (int writeSize in new[] { 16 * 1024, 1024 })
        {
            int rounds = writeSize == 1024 ? settings.SmallWriteRounds : settings.ThroughputRounds;
            log.WriteLine($"throughput, {writeSize / 1024} KiB writes, client to server ({rounds} round(s), median kept):");
            Dictionary<string, List<ThroughputMeasurement.Result>> results = await ThroughputMeasurement.RunAsync(all, writeSize, rounds, settings, log, cancellationToken).ConfigureAwait(false);
            string suffix = writeSize == 1024 ? ".1k" : "";
            foreach (BenchTarget target in all)
            {
                report.Add($"{target.Name}.throughput{suffix}", Rounds.Of([.. results[target.Name].Select(r => r.MegabytesPerSecond)]), "MB/s");
            }

            foreach (BenchTarget target in all)
            {
                report.Add($"{target.Name}.throughput{suffix}.cpu", Rounds.Of([.. results[target.Name].Select(r => r.CpuMicrosecondsPerMegabyte)]), "us/MB");
            }

            foreach (BenchTarget target in all)
            {
                report.Add($"{target.Name}.throughput{suffix}.alloc", Rounds.Of([.. results[target.Name].Select(r => r.AllocatedPerWrite)]).Median, "bytes/write");
            }
        }
    }
}
