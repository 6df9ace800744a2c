using System.Net;

namespace Ossuary.Pipelines.Transport;

/// <summary>What <see cref="OssuaryClientOptions.TrustServerAtEndPoint"/> decides about: a server key and where it was met.</summary>
public sealed class OssuaryServerTrustContext
{
    internal OssuaryServerTrustContext(OssuaryPublicKey serverKey, EndPoint? endPoint, EndPoint? remoteEndPoint)
    {
        ServerKey = serverKey;
        EndPoint = endPoint;
        RemoteEndPoint = remoteEndPoint;
    }

    /// <summary>The key the server proved it holds.</summary>
    public OssuaryPublicKey ServerKey { get; }

    /// <summary>
    /// The endpoint as the application named it (a <see cref="DnsEndPoint"/> keeps its host name, the
    /// key of a known-hosts file); null when a bare pipe or stream was secured without one.
    /// </summary>
    public EndPoint? EndPoint { get; }

    /// <summary>
    /// The address actually connected to (the resolved address of a host name): the socket's peer for
    /// <c>OssuaryClient</c>, <c>OssuaryConnectionFactory</c> and an <c>OssuaryStream</c> over a
    /// <see cref="System.Net.Sockets.NetworkStream"/>; null when unknown (another stream, a bare pipe).
    /// </summary>
    public EndPoint? RemoteEndPoint { get; }
}
