using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Soak;
using Ossuary.Pipelines.Transport;

// Soak: N concurrent connections through a Kestrel UseOssuary server moving TOTAL bytes in all,
// every stream checked with SHA-256; memory measured before and after.
//   dotnet run -c Release --project benchmarks/Ossuary.Pipelines.Soak -- [connections=1000] [total-MiB=1024]
// Exit code 0 when no byte was lost or corrupted and the managed heap ends within the margin.
int connections = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1000;
long totalBytes = (args.Length > 1 ? long.Parse(args[1], CultureInfo.InvariantCulture) : 1024) * 1024 * 1024;
long perConnection = totalBytes / connections;

using OssuaryIdentity serverKey = OssuaryIdentity.Generate();
using OssuaryIdentity clientKey = OssuaryIdentity.Generate();
var counters = new SoakCounters();
// The program's directory as the content root, not the current one, which the host would watch recursively.
WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
builder.Logging.ClearProviders();
builder.Services.AddSingleton(counters);
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Limits.MaxConcurrentConnections = null;
    kestrel.Listen(IPAddress.Loopback, 0, listen =>
    {
        listen.UseOssuary(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            // 1,000 simultaneous handshakes on 2 busy cores queue up for seconds: the original's 3 s
            // wait per step would reset clients that are merely slow, which is not what is measured here.
            o.HandshakeTimeout = TimeSpan.FromSeconds(60);
            o.HandshakeStepTimeout = TimeSpan.FromSeconds(30);
        });
        listen.UseConnectionHandler<HashingConnectionHandler>();
    });
});
await using WebApplication app = builder.Build();
await app.StartAsync();
var endpoint = new IPEndPoint(IPAddress.Loopback, new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()).Port);
var options = new OssuaryClientOptions { Identity = clientKey, HandshakeTimeout = TimeSpan.FromSeconds(60), HandshakeStepTimeout = TimeSpan.FromSeconds(30) };
options.TrustedServerKeys.Add(serverKey.PublicKey);

// Full warm-up rounds first, so that JIT, the thread pool and the buffer pools (Kestrel's and
// ArrayPool's keep what they once needed, up to their caps) are in their steady state before
// "before". Measured here: the managed heap plateaus after two rounds; a leak would instead grow
// by the same amount every round.
int warmups = int.Parse(Environment.GetEnvironmentVariable("SOAK_WARMUP_ROUNDS") ?? "2", CultureInfo.InvariantCulture);
for (int round = 0; round < warmups; round++)
{
    await RoundAsync(connections, perConnection);
}
(long managedBefore, long workingSetBefore) = Memory();
Console.WriteLine($"soak: {connections} concurrent connections, {perConnection / 1024} KiB each, {totalBytes / 1048576} MiB in all");
Console.WriteLine($"before: managed {managedBefore / 1024} KiB, working set {workingSetBefore / 1048576} MiB");
long movedBefore = Interlocked.Read(ref counters.BytesHashed);
var clock = Stopwatch.StartNew();
int failures = await RoundAsync(connections, perConnection);
clock.Stop();

(long managedAfter, long workingSetAfter) = Memory();
long moved = Interlocked.Read(ref counters.BytesHashed) - movedBefore;
Console.WriteLine($"moved {moved / 1048576.0:0.0} MiB in {clock.Elapsed.TotalSeconds:0.0} s (settling included) ({moved / 1e6 / clock.Elapsed.TotalSeconds:0} MB/s); client mismatches or failures {failures}, server failures {counters.ServerFailures}");
Console.WriteLine($"after:  managed {managedAfter / 1024} KiB ({(managedAfter - managedBefore) / 1024:+#;-#;0} KiB), working set {workingSetAfter / 1048576} MiB ({(workingSetAfter - workingSetBefore) / 1048576:+#;-#;0} MiB)");

// Margin: the managed heap may differ by pooled buffers and caches, not by anything per connection.
const long ManagedMargin = 8 * 1024 * 1024;
bool leaked = managedAfter - managedBefore > ManagedMargin;
bool lost = failures > 0 || counters.ServerFailures > 0 || moved != perConnection * connections;
Console.WriteLine(lost || leaked
    ? $"FAILED: {(lost ? "bytes lost or corrupted" : "")} {(leaked ? $"managed heap grew by more than {ManagedMargin / 1048576} MiB" : "")}"
    : $"OK: 0 bytes lost or corrupted; managed heap within {ManagedMargin / 1048576} MiB of the start");
return lost || leaked ? 1 : 0;

async Task<int> RoundAsync(int count, long length)
{
    Task<bool>[] clients = [.. Enumerable.Range(0, count).Select(i => Task.Run(() => SoakClient.RunAsync(endpoint, options, i, length, CancellationToken.None)))];
    int bad = 0;
    foreach (Task<bool> client in clients)
    {
        try
        {
            bad += await client ? 0 : 1;
        }
        catch (Exception ex) when (ex is OssuaryException or IOException or System.Net.Sockets.SocketException)
        {
            if (bad++ < 5)
            {
                Console.Error.WriteLine($"client failed: {ex.Message}");
            }
        }
    }

    // Let the server finish closing the connections before anything is measured.
    await Task.Delay(int.Parse(Environment.GetEnvironmentVariable("SOAK_SETTLE_MS") ?? "2000", CultureInfo.InvariantCulture));
    return bad;
}

static (long Managed, long WorkingSet) Memory()
{
    for (int i = 0; i < 3; i++)
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    using Process self = Process.GetCurrentProcess();
    return (GC.GetTotalMemory(forceFullCollection: true), self.WorkingSet64);
}
