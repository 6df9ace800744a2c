namespace Ossuary.Pipelines.Protocol;

/// <summary>The outcome of one <see cref="OssuarySession.Receive"/> call.</summary>
/// <param name="Status">What happened.</param>
/// <param name="PlaintextLength">For <see cref="OssuaryReceiveStatus.Data"/>, the bytes written to the plaintext writer.</param>
/// <param name="Reason">For <see cref="OssuaryReceiveStatus.Reset"/> and <see cref="OssuaryReceiveStatus.Closed"/>, why.</param>
public readonly record struct OssuaryReceiveResult(OssuaryReceiveStatus Status, int PlaintextLength = 0, OssuaryErrorReason Reason = OssuaryErrorReason.None)
{
    internal static OssuaryReceiveResult NeedMoreData => new(OssuaryReceiveStatus.NeedMoreData);

    internal static OssuaryReceiveResult Handshake => new(OssuaryReceiveStatus.Handshake);

    internal static OssuaryReceiveResult Data(int length) => new(OssuaryReceiveStatus.Data, length);

    internal static OssuaryReceiveResult Reset(OssuaryErrorReason reason) => new(OssuaryReceiveStatus.Reset, 0, reason);

    internal static OssuaryReceiveResult Closed(OssuaryErrorReason reason) => new(OssuaryReceiveStatus.Closed, 0, reason);
}
