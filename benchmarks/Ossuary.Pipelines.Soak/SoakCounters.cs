namespace Ossuary.Pipelines.Soak;

/// <summary>What the server saw; fields so that Interlocked can update them.</summary>
internal sealed class SoakCounters
{
    public long BytesHashed;
    public int ServerFailures;
}
