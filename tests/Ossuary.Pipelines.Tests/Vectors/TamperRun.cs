using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Vectors;

/// <summary>One byte of one recorded packet, xor-ed with <paramref name="Mask"/> before the packet goes on the wire.</summary>
internal readonly record struct Tamper(int PacketIndex, int Offset, byte Mask);

/// <summary>One <see cref="OssuarySession.Receive"/> call, and which recorded packet started where it read (null: bytes no recording names).</summary>
internal readonly record struct Delivery(string Side, int? PacketIndex, OssuaryReceiveStatus Status, OssuaryErrorReason Reason, long Consumed)
{
    public bool IsError => Status is OssuaryReceiveStatus.Reset or OssuaryReceiveStatus.Closed;

    public override string ToString() => $"{Side} <- #{PacketIndex?.ToString() ?? "?"}: {Status} {Reason} ({Consumed} bytes)";
}

/// <summary>What happened in one replay.</summary>
internal sealed class TamperRun
{
    public List<Delivery> Log { get; } = [];

    /// <summary>The plaintexts each side passed to WriteData.</summary>
    public Dictionary<string, List<byte[]>> Sent { get; } = new() { ["client"] = [], ["server"] = [] };

    /// <summary>The plaintexts each side's Receive produced.</summary>
    public Dictionary<string, List<byte[]>> Received { get; } = new() { ["client"] = [], ["server"] = [] };

    /// <summary>The state of each recorded packet's receiver when the packet arrived in its input.</summary>
    public Dictionary<int, OssuarySessionState> ReceiverStateOnArrival { get; } = [];

    /// <summary>Sides that were still open at the end with part of a packet in their input (a truncated stream).</summary>
    public HashSet<string> Truncated { get; } = [];

    public bool IsTruncated(string side) => Truncated.Contains(side);
}
