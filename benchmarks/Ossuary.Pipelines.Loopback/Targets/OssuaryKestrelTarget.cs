using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// Ossuary as an application would deploy it: a Kestrel listener with <c>UseOssuary</c> in front
/// of a connection handler, and <see cref="OssuaryClient.ConnectAsync"/> (the pipes client).
/// <c>ossuary-64k</c> is the same with <c>AddLargeBlockMemoryPool</c>, as a bulk-transfer server would run.
/// </summary>
internal sealed class OssuaryKestrelTarget : KestrelBenchTarget
{
    private readonly OssuaryClientOptions _clientOptions;

    private OssuaryKestrelTarget(OssuaryClientOptions clientOptions, string name)
    {
        _clientOptions = clientOptions;
        Name = name;
    }

    public override string Name { get; }

    public override string Description => Name == "ossuary"
        ? "Kestrel + UseOssuary server, OssuaryClient.ConnectAsync client"
        : "the same, Kestrel with AddLargeBlockMemoryPool (64 KiB transport blocks)";

    public static async Task<OssuaryKestrelTarget> StartAsync(OssuaryKeys keys, bool largeBlocks = false)
    {
        var target = new OssuaryKestrelTarget(keys.ClientOptions(), largeBlocks ? "ossuary-64k" : "ossuary");
        await target.StartKestrelAsync(listen => listen.UseOssuary(keys.ServerOptions()), largeBlocks).ConfigureAwait(false);
        return target;
    }

    public override async Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken)
    {
        OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(EndPoint, _clientOptions, cancellationToken).ConfigureAwait(false);
        return new PipeBenchClient(connection.Transport, connection.DisposeAsync);
    }
}
