using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>A server and a client identity that know each other: the usual authenticated test setup.</summary>
internal sealed class MutualKeys : IDisposable
{
    public OssuaryIdentity Server { get; } = OssuaryIdentity.Generate();

    public OssuaryIdentity Client { get; } = OssuaryIdentity.Generate();

    /// <summary>Makes <paramref name="options"/> an authenticated server admitting <see cref="Client"/>.</summary>
    public void ConfigureServer(OssuaryServerOptions options, TimeSpan handshakeTimeout)
    {
        options.Identity = Server;
        options.AuthorizedClientKeys.Add(Client.PublicKey);
        options.HandshakeTimeout = handshakeTimeout;
    }

    /// <summary>Client options with <see cref="Client"/>'s identity, trusting <see cref="Server"/>.</summary>
    public OssuaryClientOptions ClientOptions()
    {
        var options = new OssuaryClientOptions { Identity = Client };
        options.TrustedServerKeys.Add(Server.PublicKey);
        return options;
    }

    public void Dispose()
    {
        Server.Dispose();
        Client.Dispose();
    }
}
