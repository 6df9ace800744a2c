using System.Collections.Concurrent;
using System.Net;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// One way of securing (or not) a loopback connection: a running server on 127.0.0.1 and a way
/// to connect clients to it. Server-side failures are collected and fail the measurement.
/// </summary>
internal abstract class BenchTarget : IAsyncDisposable
{
    private readonly ConcurrentQueue<Exception> _serverErrors = new();

    /// <summary>The figure prefix: <c>tcp</c>, <c>tls13-aesgcm</c>, <c>ossuary</c>, ...</summary>
    public abstract string Name { get; }

    /// <summary>What is measured, in a few words, for the log.</summary>
    public abstract string Description { get; }

    public abstract IPEndPoint EndPoint { get; }

    /// <summary>Server ends of connections still running (a closed client's server end finishes after the client).</summary>
    public abstract int OpenServerConnections { get; }

    /// <summary>Connects, runs the handshake if there is one, and returns the client end.</summary>
    public abstract Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();

    /// <summary>Throws the first server-side failure since the last call, if any.</summary>
    public void ThrowIfServerFailed()
    {
        if (_serverErrors.TryDequeue(out Exception? error))
        {
            _serverErrors.Clear();
            throw new InvalidOperationException($"the {Name} server failed: {error.Message}", error);
        }
    }

    protected void ReportServerError(Exception error) => _serverErrors.Enqueue(error);
}
