using System.Net;
using Ossuary.Pipelines;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>Where the telemetry server listens and whom it admits.</summary>
public sealed class TelemetryServerOptions
{
    /// <summary>The address to listen on. Default: loopback.</summary>
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>The TCP port; 0 picks a free one (see <see cref="TelemetryServer.EndPoint"/>).</summary>
    public int Port { get; init; }

    /// <summary>The server's identity, which devices pin. Not disposed by the server.</summary>
    public required OssuaryIdentity Identity { get; init; }

    /// <summary>The devices admitted (an authorized-keys file's content).</summary>
    public required IReadOnlyCollection<OssuaryPublicKey> AuthorizedDevices { get; init; }

    /// <summary>Minimum level of the server's console log. Default: warnings.</summary>
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Warning;
}
