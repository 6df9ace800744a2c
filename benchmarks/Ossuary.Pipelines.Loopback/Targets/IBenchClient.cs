namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>The client end of one connection to a target, speaking <see cref="Wire.BenchWire"/>.</summary>
internal interface IBenchClient : IAsyncDisposable
{
    /// <summary>One byte to the server and one back.</summary>
    Task PingAsync(CancellationToken cancellationToken);

    /// <summary>Sends <paramref name="count"/> bytes in writes of <paramref name="chunk"/>'s size and waits until the server has counted them all.</summary>
    Task SendBulkAsync(long count, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken);

    /// <summary>Leaves a read pending, as an idle connection's read loop does; disposal ends it.</summary>
    void StartIdleRead();
}
