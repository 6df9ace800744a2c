using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>PROTOCOL.md, "Refused client": an authenticated server and a client it does not admit.</summary>
public class RefusedClientTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnUnadmittedClientIsRefusedAtOnceWithAnErrorDisconnect(bool anonymous)
    {
        using SessionPair pair = SessionPair.Create(anonymousClient: anonymous, serverAdmitsClient: false);
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server));

        OssuaryReceiveResult refused = SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.InvalidKey), (refused.Status, refused.Reason));
        Assert.Null(pair.Server.RemotePublicKey);
        byte[] disconnect = SessionPair.NextPacket(pair.Server);
        Assert.Equal((Wire.Disconnect, (ushort)0, (byte)1), (Wire.Type(disconnect), Wire.MessageId(disconnect), Wire.ErrorFlag(disconnect)));
        Assert.Equal(OssuarySessionState.Closed, pair.Server.State);

        OssuaryReceiveResult told = SessionPair.Receive(pair.Client, disconnect);
        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (told.Status, told.Reason));
    }

    [Fact]
    public void WithoutRefusalAtOnceBothSidesFailAfterFiveResetsAndTheServerKeepsTheCause()
    {
        using SessionPair pair = SessionPair.Create(serverAdmitsClient: false, server: o => o.RefuseUnauthorizedClientsAtOnce = false);

        int packets = pair.Pump.Run();

        // Each of the first four attempts: ClientHandshake, ServerHandshake, ClientAuthentication,
        // the server's Reset (invalid key) and the client's answering Reset. The fifth attempt ends
        // with the server's Disconnect (error) instead, which the established client answers with
        // its own Disconnect (error). PROTOCOL.md counts 26 packets for the original.
        string[] attempt = ["ClientHandshake", "ServerHandshake", "ClientAuthentication"];
        string[] expected =
        [
            .. Enumerable.Repeat<string[]>([.. attempt, "server Reset", "client Reset"], 4).SelectMany(a => a),
            .. attempt, "server Disconnect(error)", "client Disconnect(error)",
        ];
        Assert.Equal(expected, pair.Pump.Wire.Select(p => Describe(pair, p.From, p.Packet)));
        Assert.Equal(25, packets);
        Assert.Equal(5, pair.Server.ResetCount);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, pair.Client.LastError); // the wire carries no reason

        // The original's sequence (ref-peer pair): the fifth refusal's recv_handshake returns
        // InvalidKey, and the connection reports "connection failed" from then on. The cause stays in LastError.
        Assert.Equal(OssuaryErrorReason.InvalidKey, pair.Server.LastError);
        OssuaryReceiveResult fifth = Assert.Single(pair.Pump.ServerResults, r => r.Status == OssuaryReceiveStatus.Closed && r.Reason != OssuaryErrorReason.ConnectionFailed);
        Assert.Equal(OssuaryErrorReason.InvalidKey, fifth.Reason);
        Assert.All(pair.Pump.ServerResults.SkipWhile(r => r != fifth).Skip(1), r => Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (r.Status, r.Reason)));
        OssuaryReceiveResult after = SessionPair.Receive(pair.Server, Wire.Control(Wire.Reset, error: true));
        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (after.Status, after.Reason));
        Assert.Equal(OssuaryErrorReason.InvalidKey, pair.Server.LastError);
        Assert.Equal(OssuarySessionState.Closed, pair.Server.State);
        Assert.Equal(OssuarySessionState.Closed, pair.Client.State);
        Assert.Equal(4, pair.Pump.ServerResults.Count(r => r is { Status: OssuaryReceiveStatus.Reset, Reason: OssuaryErrorReason.InvalidKey }));
        Assert.Equal(4, pair.Pump.ClientResults.Count(r => r is { Status: OssuaryReceiveStatus.Reset, Reason: OssuaryErrorReason.ConnectionReset }));
    }

    private static string Describe(SessionPair pair, OssuarySession from, byte[] packet) => Wire.Type(packet) switch
    {
        Wire.ClientHandshake => "ClientHandshake",
        Wire.ServerHandshake => "ServerHandshake",
        Wire.ClientAuthentication => "ClientAuthentication",
        Wire.Reset => $"{Side(pair, from)} Reset",
        Wire.Disconnect => $"{Side(pair, from)} Disconnect({(Wire.ErrorFlag(packet) == 1 ? "error" : "clean")})",
        var type => $"type 0x{type:x}",
    };

    private static string Side(SessionPair pair, OssuarySession session) => ReferenceEquals(session, pair.Client) ? "client" : "server";
}
