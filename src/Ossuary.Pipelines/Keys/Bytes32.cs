using System.Runtime.CompilerServices;

namespace Ossuary.Pipelines;

/// <summary>
/// 32 bytes held inside the object that declares the field: a public key or a handshake challenge
/// costs no array of its own (24 B of header and a reference more, for every connection's key).
/// Not for secrets: the garbage collector may copy an object with its fields, and only a pinned
/// array (<c>RecordCipher</c>'s) guarantees that a zeroed secret leaves no copy behind.
/// </summary>
[InlineArray(Size)]
internal struct Bytes32
{
    public const int Size = 32;

    private byte _element0;
}
