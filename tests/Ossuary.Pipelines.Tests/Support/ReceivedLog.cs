using System.Collections.Concurrent;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>What each connection of an <see cref="EchoConnectionHandler"/> received: byte count and SHA-256 (hex).</summary>
public sealed class ReceivedLog
{
    private readonly ConcurrentQueue<(long Count, string Sha256)> _entries = new();

    public IReadOnlyList<(long Count, string Sha256)> Entries => [.. _entries];

    public void Add(long count, string sha256) => _entries.Enqueue((count, sha256));
}
