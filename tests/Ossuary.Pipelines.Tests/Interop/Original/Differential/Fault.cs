namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>What happens to one packet on the wire, or right after it.</summary>
internal enum FaultKind
{
    /// <summary>One byte of the packet's wire copy changes (offsets 0 and 1 make its length oversized).</summary>
    Corrupt,

    /// <summary>A Reset (msg_id 0) follows the packet.</summary>
    InjectReset,

    /// <summary>A clean Disconnect follows the packet.</summary>
    InjectCleanDisconnect,

    /// <summary>A Disconnect with the error flag follows the packet.</summary>
    InjectErrorDisconnect,

    /// <summary>The bytes of <see cref="Fault.Hex"/> (any packet, or several, or a piece of one) follow the packet.</summary>
    InjectHex,

    /// <summary>A copy of the side's packet number <see cref="Fault.Offset"/>, as it was written, follows the packet.</summary>
    Replay,

    /// <summary><see cref="Fault.Offset"/> bytes (0xa5) are appended to the packet's body, and its length field grows by as many.</summary>
    Extend,

    /// <summary>The packet's body is cut to its first <see cref="Fault.Offset"/> bytes, and its length field says so.</summary>
    Truncate,

    /// <summary>The packet never reaches the wire (with <see cref="Replay"/> later, a reordering).</summary>
    Drop,
}

/// <summary>A fault on packet <paramref name="Index"/> (0-based) that <paramref name="Side"/> writes.</summary>
internal sealed record Fault(string Side, int Index, FaultKind Kind, int Offset = 0, int Xor = 0, string Hex = "")
{
    public IEnumerable<string> Arguments() => Kind switch
    {
        FaultKind.Corrupt => ["--corrupt", FormattableString.Invariant($"{Side}:{Index}:{Offset}:{Xor:x}")],
        FaultKind.InjectHex => ["--inject-hex", FormattableString.Invariant($"{Side}:{Index}:{Hex}")],
        FaultKind.Replay => ["--replay", FormattableString.Invariant($"{Side}:{Index}:{Offset}")],
        FaultKind.Extend => ["--extend", FormattableString.Invariant($"{Side}:{Index}:{Offset}")],
        FaultKind.Truncate => ["--truncate", FormattableString.Invariant($"{Side}:{Index}:{Offset}")],
        FaultKind.Drop => ["--drop", FormattableString.Invariant($"{Side}:{Index}")],
        _ => ["--inject", $"{Side}:{Index}:{Kind switch { FaultKind.InjectReset => "reset", FaultKind.InjectCleanDisconnect => "disconnect0", _ => "disconnect1" }}"],
    };
}
