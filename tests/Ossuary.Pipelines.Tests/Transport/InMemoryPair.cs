using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>Two OssuaryDuplexPipes (client and server) secured over a <see cref="LinkedPipes"/> whose relays the test started.</summary>
internal sealed class InMemoryPair : IAsyncDisposable
{
    private readonly OssuaryIdentity _serverKey = OssuaryIdentity.Generate();
    private readonly OssuaryIdentity _clientKey = OssuaryIdentity.Generate();

    public OssuaryDuplexPipe Client { get; private set; } = null!;

    public OssuaryDuplexPipe Server { get; private set; } = null!;

    public OssuaryPublicKey ServerKey => _serverKey.PublicKey;

    public OssuaryPublicKey ClientKey => _clientKey.PublicKey;

    /// <summary>
    /// Runs both handshakes at once over <paramref name="link"/>; <paramref name="serverTransport"/> may wrap the server's end first.
    /// <paramref name="closeWait"/>, if given, in place of both ends' 5 s wait for their peer as they end (see <see cref="ShortCloseWait"/>).
    /// </summary>
    public static async Task<InMemoryPair> ConnectAsync(LinkedPipes link, Func<IDuplexPipe, IDuplexPipe>? serverTransport = null, TimeSpan? closeWait = null, CancellationToken cancellationToken = default)
    {
        var pair = new InMemoryPair();
        var serverOptions = new OssuaryServerOptions { Identity = pair._serverKey };
        serverOptions.CloseWait = closeWait ?? serverOptions.CloseWait;
        serverOptions.AuthorizedClientKeys.Add(pair._clientKey.PublicKey);
        var clientOptions = new OssuaryClientOptions { Identity = pair._clientKey };
        clientOptions.CloseWait = closeWait ?? clientOptions.CloseWait;
        clientOptions.TrustedServerKeys.Add(pair._serverKey.PublicKey);

        Task<OssuaryDuplexPipe> server = OssuaryDuplexPipe.AcceptAsync(serverTransport is null ? link.Server : serverTransport(link.Server), serverOptions, cancellationToken);
        Task<OssuaryDuplexPipe> client = OssuaryDuplexPipe.ConnectAsync(link.Client, clientOptions, cancellationToken);
        await Task.WhenAll(server, client).Within();
        pair.Server = server.Result;
        pair.Client = client.Result;
        return pair;
    }

    public async ValueTask DisposeAsync()
    {
        if (Client is not null)
        {
            await Client.DisposeAsync().Within();
        }

        if (Server is not null)
        {
            await Server.DisposeAsync().Within();
        }

        _serverKey.Dispose();
        _clientKey.Dispose();
    }
}
