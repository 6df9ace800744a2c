using System.Reflection;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// What an established, idle connection keeps for its whole life, object by object: every array a
/// connection holds is 24 B of header and a reference besides its bytes, and a server holds thousands.
/// Measured in bytes this thread allocated, which do not depend on how busy the machine is.
/// </summary>
public class IdleFootprintTests
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    [Fact]
    public void APublicKeyIsOneObjectWithItsBytesInside()
    {
        byte[] raw = Convert.FromHexString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        _ = new OssuaryPublicKey(raw); // the type's first use is not the object's cost

        const int Keys = 100;
        var kept = new OssuaryPublicKey[Keys];
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Keys; i++)
        {
            kept[i] = new OssuaryPublicKey(raw);
        }

        long each = (GC.GetAllocatedBytesForCurrentThread() - before) / Keys;

        // A header (16 B) and the 32 bytes: a separate array made it 80 B, held by every connection for its peer.
        Assert.True(each <= 48, $"a public key allocated {each} B");
        Assert.All(kept, key => Assert.Equal(raw, key.Span.ToArray()));
    }

    [Fact]
    public void AnEstablishedSessionHoldsNoArrayOfItsOwn()
    {
        using SessionPair pair = SessionPair.Create(OssuaryRole.AuthenticatedServer);
        pair.Pump.Run();
        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished, "the handshake did not complete");

        foreach (OssuarySession side in new[] { pair.Client, pair.Server })
        {
            // The session key is the cipher's (a pinned array, so that zeroing it leaves no copy); the challenge,
            // which a reset's handshake signs again, is kept inline; the handshake's other material is dropped.
            foreach (FieldInfo field in typeof(OssuarySession).GetFields(InstanceFields))
            {
                if (field.FieldType == typeof(byte[]))
                {
                    Assert.True(field.GetValue(side) is null, $"an established {side.Role} session holds {field.Name}");
                }
            }
        }

        // The challenge kept inline still signs and checks: data flows both ways.
        Assert.Equal(OssuaryReceiveStatus.Data, SessionPair.Receive(pair.Server, SessionPair.DataPacket(pair.Client, "up"u8), out byte[] up).Status);
        Assert.Equal("up"u8.ToArray(), up);
    }
}
