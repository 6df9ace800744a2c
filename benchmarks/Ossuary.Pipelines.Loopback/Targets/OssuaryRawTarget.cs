using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Loopback.Wire;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>Two bare <see cref="OssuaryDuplexPipe"/> adapters over socket pipes: no Kestrel, no client wrapper.</summary>
internal sealed class OssuaryRawTarget : BenchTarget
{
    private readonly SocketListener _listener;
    private readonly OssuaryServerOptions _serverOptions;
    private readonly OssuaryClientOptions _clientOptions;

    public OssuaryRawTarget(OssuaryKeys keys)
    {
        _serverOptions = keys.ServerOptions();
        _clientOptions = keys.ClientOptions();
        _listener = new SocketListener(ServeAsync, ReportServerError);
    }

    public override string Name => "ossuary-raw";

    public override string Description => "OssuaryDuplexPipe.ConnectAsync/AcceptAsync over socket pipes on both ends";

    public override IPEndPoint EndPoint => _listener.EndPoint;

    public override int OpenServerConnections => _listener.OpenConnections;

    public override async Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken)
    {
        var transport = new SocketStreamPipe(await TcpTarget.ConnectSocketAsync(EndPoint, cancellationToken).ConfigureAwait(false));
        try
        {
            OssuaryDuplexPipe secure = await OssuaryDuplexPipe.ConnectAsync(transport, _clientOptions, cancellationToken).ConfigureAwait(false);
            return new PipeBenchClient(secure, async () =>
            {
                await secure.DisposeAsync().ConfigureAwait(false);
                await transport.DisposeAsync().ConfigureAwait(false);
            });
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public override ValueTask DisposeAsync() => _listener.DisposeAsync();

    private async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        await using var transport = new SocketStreamPipe(socket);
        await using OssuaryDuplexPipe secure = await OssuaryDuplexPipe.AcceptAsync(transport, _serverOptions, cancellationToken).ConfigureAwait(false);
        await BenchWire.ServeAsync(secure, cancellationToken).ConfigureAwait(false);
    }
}
