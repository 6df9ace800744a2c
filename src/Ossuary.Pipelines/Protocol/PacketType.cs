namespace Ossuary.Pipelines.Protocol;

/// <summary>The <c>type</c> field of the packet header.</summary>
internal enum PacketType : ushort
{
    ClientHandshake = 0x01,
    ServerHandshake = 0x02,
    ClientAuthentication = 0x03,
    Disconnect = 0x10,
    Reset = 0x11,
    EncryptedData = 0x20,
}
