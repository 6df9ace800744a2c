using System.Net.Sockets;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// Plain TCP into a Kestrel connection handler (no UseOssuary), NetworkStream client: the ceiling
/// of the path the <c>ossuary</c> target's server side takes, Kestrel's socket transport included.
/// </summary>
internal sealed class KestrelTcpTarget : KestrelBenchTarget
{
    private KestrelTcpTarget()
    {
    }

    public override string Name => "tcp-kestrel";

    public override string Description => "plain TCP into a Kestrel connection handler";

    public static async Task<KestrelTcpTarget> StartAsync()
    {
        var target = new KestrelTcpTarget();
        await target.StartKestrelAsync(_ => { }).ConfigureAwait(false);
        return target;
    }

    public override async Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken)
    {
        Socket socket = await TcpTarget.ConnectSocketAsync(EndPoint, cancellationToken).ConfigureAwait(false);
        return new StreamBenchClient(new NetworkStream(socket, ownsSocket: true));
    }
}
