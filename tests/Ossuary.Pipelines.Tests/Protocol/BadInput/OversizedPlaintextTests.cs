using System.Buffers;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>WriteData refuses a plaintext longer than one packet carries, naming the caller's argument, and writes nothing.</summary>
public class OversizedPlaintextTests
{
    [Fact]
    public void OversizedSpanIsRefusedNamingThePlaintextParameter()
    {
        using var sessions = EstablishedPair.Create();
        var output = new ArrayBufferWriter<byte>();
        byte[] plaintext = new byte[OssuarySession.MaxPlaintextLength + 1];

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => sessions.Client.WriteData(plaintext, output));

        Assert.Equal("plaintext", error.ParamName);
        Assert.Equal(0, output.WrittenCount);
    }

    [Fact]
    public void OversizedMultiSegmentSequenceIsRefusedNamingThePlaintextParameter()
    {
        using var sessions = EstablishedPair.Create();
        var output = new ArrayBufferWriter<byte>();
        int half = (OssuarySession.MaxPlaintextLength / 2) + 1;
        ReadOnlySequence<byte> plaintext = SegmentedSequence.Create([new byte[half], new byte[half]]);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => sessions.Client.WriteData(plaintext, output));

        Assert.Equal("plaintext", error.ParamName);
        Assert.Equal(0, output.WrittenCount);
    }

    [Fact]
    public void PlaintextOfExactlyOnePacketIsSealed()
    {
        using var sessions = EstablishedPair.Create();
        var output = new ArrayBufferWriter<byte>();
        byte[] plaintext = new byte[OssuarySession.MaxPlaintextLength];

        int written = sessions.Client.WriteData(plaintext, output);

        Assert.Equal(OssuarySession.MaxPacketLength, written);
    }

    private sealed class EstablishedPair : IDisposable
    {
        private readonly OssuaryIdentity _serverIdentity = OssuaryIdentity.Generate();
        private readonly OssuarySession _server;

        private EstablishedPair()
        {
            var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client };
            clientOptions.AuthorizedKeys.Add(_serverIdentity.PublicKey);
            Client = new OssuarySession(clientOptions);
            _server = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer, Identity = _serverIdentity });
            new SessionPump(Client, _server).Run();
            Assert.True(Client.IsEstablished);
        }

        public OssuarySession Client { get; }

        public static EstablishedPair Create() => new();

        public void Dispose()
        {
            Client.Dispose();
            _server.Dispose();
            _serverIdentity.Dispose();
        }
    }
}
