using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// Both identities of the Ossuary targets: an authenticated server that admits the client's key
/// and a client that pins the server's, as in <c>ossuary demo</c>. So every Ossuary handshake
/// authenticates both sides (TLS here authenticates only the server).
/// </summary>
internal sealed class OssuaryKeys : IDisposable
{
    public OssuaryIdentity Server { get; } = OssuaryIdentity.Generate();

    public OssuaryIdentity Client { get; } = OssuaryIdentity.Generate();

    public OssuaryServerOptions ServerOptions()
    {
        var options = new OssuaryServerOptions { Identity = Server, Mode = OssuaryServerMode.Authenticated };
        options.AuthorizedClientKeys.Add(Client.PublicKey);
        return options;
    }

    public OssuaryClientOptions ClientOptions()
    {
        var options = new OssuaryClientOptions { Identity = Client };
        options.TrustedServerKeys.Add(Server.PublicKey);
        return options;
    }

    /// <summary>
    /// The client's core session options, as the pipes adapter runs them: the client pins the
    /// server's key. (The core's server is unauthenticated: the adapter checks the allow-list once
    /// the handshake is done.)
    /// </summary>
    public OssuarySessionOptions ClientSessionOptions()
    {
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = Client };
        options.AuthorizedKeys.Add(Server.PublicKey);
        return options;
    }

    /// <inheritdoc cref="ClientSessionOptions"/>
    public OssuarySessionOptions ServerSessionOptions() => new() { Role = OssuaryRole.UnauthenticatedServer, Identity = Server };

    public void Dispose()
    {
        Server.Dispose();
        Client.Dispose();
    }
}
