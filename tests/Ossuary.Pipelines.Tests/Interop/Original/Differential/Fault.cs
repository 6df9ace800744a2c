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
}

/// <summary>A fault on packet <paramref name="Index"/> (0-based) that <paramref name="Side"/> writes.</summary>
internal sealed record Fault(string Side, int Index, FaultKind Kind, int Offset = 0, int Xor = 0)
{
    public IEnumerable<string> Arguments() => Kind == FaultKind.Corrupt
        ? ["--corrupt", FormattableString.Invariant($"{Side}:{Index}:{Offset}:{Xor:x}")]
        : ["--inject", $"{Side}:{Index}:{Kind switch { FaultKind.InjectReset => "reset", FaultKind.InjectCleanDisconnect => "disconnect0", _ => "disconnect1" }}"];
}
