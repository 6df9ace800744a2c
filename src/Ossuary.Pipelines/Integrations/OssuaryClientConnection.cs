using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// A client connection whose <see cref="Transport"/> is the plaintext pipe. Dispose it to send
/// Disconnect and close the socket.
/// </summary>
public sealed class OssuaryClientConnection : ConnectionContext
{
    private readonly OssuaryDuplexPipe _secure;
    private readonly StreamDuplexPipe _socketPipe;
    private readonly CancellationTokenSource _closed = new();
    private int _disposed;

    internal OssuaryClientConnection(OssuaryDuplexPipe secure, StreamDuplexPipe socketPipe, EndPoint? local, EndPoint? remote)
    {
        _secure = secure;
        _socketPipe = socketPipe;
        Transport = secure;
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        ConnectionClosed = _closed.Token;
        Features.Set<IOssuaryConnectionFeature>(secure.Feature);
    }

    // ConnectionId and Items are made on first use: most clients never ask, and an idle
    // connection's memory is mostly small objects like these.
    private string? _connectionId;
    private IDictionary<object, object?>? _items;

    /// <inheritdoc />
    public override string ConnectionId
    {
        get => _connectionId ??= Guid.NewGuid().ToString("N");
        set => _connectionId = value;
    }

    /// <inheritdoc />
    public override IFeatureCollection Features { get; } = new FeatureCollection();

    /// <inheritdoc />
    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    /// <summary>The plaintext pipe.</summary>
    public override IDuplexPipe Transport { get; set; }

    /// <summary>What the handshake established.</summary>
    public IOssuaryConnectionFeature Ossuary => _secure.Feature;

    /// <inheritdoc />
    public override void Abort(ConnectionAbortedException abortReason)
    {
        _secure.Output.Complete(abortReason);
        _closed.Cancel();
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        // Only the first call does anything, as IAsyncDisposable asks: a bounded explicit dispose
        // followed by `await using`'s own used to throw ObjectDisposedException from the disposed token source.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _secure.DisposeAsync().ConfigureAwait(false);
        await _socketPipe.DisposeStreamAsync().ConfigureAwait(false);
        await _closed.CancelAsync().ConfigureAwait(false);
        _closed.Dispose();
    }
}
