namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>Readings sent by the fleet and queued by the server since the send phase began.</summary>
internal sealed class SendWindow
{
    private long _sent;
    private long _ingested;

    public long Ahead => Interlocked.Read(ref _sent) - Interlocked.Read(ref _ingested);

    public void Reset()
    {
        Interlocked.Exchange(ref _sent, 0);
        Interlocked.Exchange(ref _ingested, 0);
    }

    public void Sent(int count) => Interlocked.Add(ref _sent, count);

    public void Ingested(long total) => Interlocked.Exchange(ref _ingested, total);
}
