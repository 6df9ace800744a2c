using System.IO.Pipelines;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// An <c>ossuary</c> bench connection's packets (<see cref="PacketsExchange"/>) into a Kestrel
/// connection handler, with no crypto and no adapter: what Kestrel's socket transport costs for
/// the protocol's messages, the part of the <c>ossuary</c> target's server path that neither the
/// protocol nor the adapter can remove. Handshakes only.
/// </summary>
internal sealed class KestrelPacketsTarget : KestrelBenchTarget
{
    private readonly PacketsExchange _exchange;

    private KestrelPacketsTarget(OssuaryPacketSizes sizes) => _exchange = new PacketsExchange(sizes);

    public override string Name => "tcp-packets-kestrel";

    public override string Description => "an ossuary connection's packets into a Kestrel connection handler, no crypto";

    public static async Task<KestrelPacketsTarget> StartAsync(OssuaryPacketSizes sizes)
    {
        var target = new KestrelPacketsTarget(sizes);
        await target.StartKestrelAsync(_ => { }).ConfigureAwait(false);
        return target;
    }

    public override Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken) => _exchange.ConnectAsync(EndPoint, cancellationToken);

    protected override async Task ServeConnectionAsync(IDuplexPipe transport)
    {
        // Each write of the pipe writer's stream is flushed, as the socket target's are sent.
        await using Stream input = transport.Input.AsStream(leaveOpen: true);
        await using Stream output = transport.Output.AsStream(leaveOpen: true);
        await _exchange.ServeAsync(input, output, CancellationToken.None).ConfigureAwait(false);
    }
}
