using System.Buffers;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A client and a server with real identities, wired through a <see cref="SessionPump"/>. By default
/// the server is authenticated, admits the client's key, and the client trusts the server's key.
/// </summary>
internal sealed class SessionPair : IDisposable
{
    private SessionPair(OssuarySessionOptions clientOptions, OssuarySessionOptions serverOptions, OssuaryIdentity? clientIdentity, OssuaryIdentity serverIdentity)
    {
        ClientIdentity = clientIdentity;
        ServerIdentity = serverIdentity;
        Client = new OssuarySession(clientOptions);
        Server = new OssuarySession(serverOptions);
        Pump = new SessionPump(Client, Server);
    }

    public OssuaryIdentity? ClientIdentity { get; }

    public OssuaryIdentity ServerIdentity { get; }

    public OssuarySession Client { get; }

    public OssuarySession Server { get; }

    public SessionPump Pump { get; }

    public static SessionPair Create(
        OssuaryRole serverRole = OssuaryRole.AuthenticatedServer,
        bool anonymousClient = false,
        bool serverAdmitsClient = true,
        bool clientTrustsServer = true,
        Action<OssuarySessionOptions>? client = null,
        Action<OssuarySessionOptions>? server = null)
    {
        OssuaryIdentity? clientIdentity = anonymousClient ? null : OssuaryIdentity.Generate();
        var serverIdentity = OssuaryIdentity.Generate();
        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = clientIdentity };
        var serverOptions = new OssuarySessionOptions { Role = serverRole, Identity = serverIdentity };
        if (clientTrustsServer)
        {
            clientOptions.AuthorizedKeys.Add(serverIdentity.PublicKey);
        }

        if (serverAdmitsClient && clientIdentity is not null)
        {
            serverOptions.AuthorizedKeys.Add(clientIdentity.PublicKey);
        }

        client?.Invoke(clientOptions);
        server?.Invoke(serverOptions);
        return new SessionPair(clientOptions, serverOptions, clientIdentity, serverIdentity);
    }

    /// <summary>A pair that has completed its handshake.</summary>
    public static SessionPair Established(OssuaryRole serverRole = OssuaryRole.AuthenticatedServer)
    {
        SessionPair pair = Create(serverRole);
        pair.Pump.Run();
        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished, "the handshake did not complete");
        return pair;
    }

    /// <summary>The next handshake or control packet <paramref name="side"/> writes, or an empty array.</summary>
    public static byte[] NextPacket(OssuarySession side)
    {
        var output = new ArrayBufferWriter<byte>();
        side.WriteHandshake(output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>One data packet from <paramref name="side"/>, not delivered.</summary>
    public static byte[] DataPacket(OssuarySession side, ReadOnlySpan<byte> message)
    {
        var output = new ArrayBufferWriter<byte>();
        side.WriteData(message, output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Hands <paramref name="packet"/> to <paramref name="side"/> as its whole input.</summary>
    public static OssuaryReceiveResult Receive(OssuarySession side, byte[] packet) => Receive(side, packet, out _);

    public static OssuaryReceiveResult Receive(OssuarySession side, byte[] packet, out byte[] plaintext)
    {
        var output = new ArrayBufferWriter<byte>();
        OssuaryReceiveResult result = side.Receive(new ReadOnlySequence<byte>(packet), output, out _, out _);
        plaintext = output.WrittenSpan.ToArray();
        return result;
    }

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
        ClientIdentity?.Dispose();
        ServerIdentity.Dispose();
    }
}
