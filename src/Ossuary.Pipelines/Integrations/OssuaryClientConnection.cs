using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// A client connection whose <see cref="Transport"/> is the plaintext pipe. Dispose it to send
/// Disconnect and close the socket. When the server is still sending (bytes from it wait unread), or
/// (Linux) is behind with the last frames, the socket sends its end (FIN) after the
/// Disconnect and disposal waits for the server to close its own,
/// discarding what it still sends, within the 5 s that disposal gives the output (then the socket is
/// closed anyway): closed with the server's bytes unread, the socket would send a reset, which can drop
/// the last frames written and the Disconnect before the server reads them, so the server failed where
/// disposal returned as if all was sent. <see cref="ConnectionClosed"/> fires when the server ends the
/// connection (its Disconnect, a failure or the socket's end; the server's last bytes may then still be
/// unread in the input, so read it to its end), on <see cref="Abort"/> and on dispose;
/// its callbacks run on the thread pool when the connection's end fires it, on the caller's thread
/// when <see cref="Abort"/> or <see cref="DisposeAsync"/> does.
/// A callback of it that throws is logged at Error (event 9; repeats of the same cause within a minute at Debug, the next Error counting them), never thrown out of <see cref="Abort"/> or <see cref="DisposeAsync"/>.
/// </summary>
public sealed class OssuaryClientConnection : ConnectionContext, IConnectionEndWatcher
{
    private readonly OssuaryDuplexPipe _secure;
    private readonly SocketDuplexPipe _socketPipe;
    private readonly ConnectionTelemetry _telemetry;
    // Cancelled and in place of the source once the connection has closed, whoever asks later.
    private static readonly CancellationTokenSource AlreadyClosed = CreateCancelled();

    // The first disposal's work; a disposal made while it runs waits for it.
    private Task? _disposal;

    // The token source, the feature collection, ConnectionId and Items are made on first use:
    // most clients never ask, and an idle connection's memory is mostly small objects like these.
    private CancellationTokenSource? _closed;
    private CancellationToken? _assignedClosed;
    private IFeatureCollection? _features;
    private string? _connectionId;
    private IDictionary<object, object?>? _items;

    internal OssuaryClientConnection(OssuaryDuplexPipe secure, SocketDuplexPipe socketPipe, ConnectionTelemetry telemetry, EndPoint? local, EndPoint? remote)
    {
        _secure = secure;
        _socketPipe = socketPipe;
        _telemetry = telemetry;
        Transport = secure;
        LocalEndPoint = local;
        RemoteEndPoint = remote;

        // ConnectionClosed fires when the server ends the connection too (its Disconnect, a failure,
        // the socket's end), not only on Abort or dispose, as Kestrel's transports do: once a write made
        // after it reports a completed pipe. Not only once both directions have stopped: the output may
        // stay stuck on a server that said goodbye and stopped reading, until disposal, which code
        // that disposes on ConnectionClosed never got to. Queued to the thread pool, as Kestrel's transports
        // queue theirs, not run inline: when the loops' end fires it, it ran in the continuations of the
        // inbound loop's task ahead of those registered later (disposal's, Completion's), so a callback
        // that waited for the connection waited for work queued behind itself (disposal gave up after 10 s).
        secure.WatchEnd(this);
    }

    /// <summary>The connection has ended under the application (see the constructor): on the thread pool.</summary>
    void IConnectionEndWatcher.OnEndedForApplication() => SignalClosed();

    /// <inheritdoc />
    public override string ConnectionId
    {
        // Made on first use, as Kestrel's are, but published once: two threads asking first (a log scope and
        // the application, say) must see one id, or their records of one connection no longer match.
        get
        {
            if (Volatile.Read(ref _connectionId) is { } id)
            {
                return id;
            }

            string made = Guid.NewGuid().ToString("N");
            return Interlocked.CompareExchange(ref _connectionId, made, null) ?? made;
        }

        set => Volatile.Write(ref _connectionId, value);
    }

    /// <inheritdoc />
    public override IFeatureCollection Features
    {
        get
        {
            if (_features is { } features)
            {
                return features;
            }

            var created = new FeatureCollection();
            created.Set<IOssuaryConnectionFeature>(_secure.Feature);
            return Interlocked.CompareExchange(ref _features, created, null) ?? created;
        }
    }

    /// <summary>
    /// Cancelled when the connection ends: the server's Disconnect, a failure or the socket's end, <see cref="Abort"/>, or disposal
    /// (see the class remarks for the thread its callbacks run on).
    /// </summary>
    /// <remarks>
    /// It says the connection is over, not that everything the server sent has been read: when the server ends the
    /// connection, it fires once that end has reached <see cref="Transport"/>'s input, and the plaintext the server sent
    /// before it may still wait there unread. An application that stops reading (or disposes the connection) when this
    /// fires can lose the last bytes; to have them all, read the input until a read returns
    /// <see cref="ReadResult.IsCompleted"/> (what came before the end is in that read's buffer, or in earlier ones).
    /// </remarks>
    public override CancellationToken ConnectionClosed
    {
        get
        {
            if (_assignedClosed is { } assigned)
            {
                return assigned;
            }

            if (Volatile.Read(ref _closed) is { } source)
            {
                return source.Token;
            }

            var created = new CancellationTokenSource();
            return (Interlocked.CompareExchange(ref _closed, created, null) ?? created).Token;
        }

        set => _assignedClosed = value;
    }

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

    /// <summary>
    /// Ends the connection now, as Kestrel's transports do: the socket is shut down under any pending
    /// write or read, so a write waiting on a server that stopped reading returns (completed) and
    /// reads fail with an <see cref="OssuaryException"/> that says this side aborted the connection and carries <paramref name="abortReason"/>;
    /// what was still queued is dropped. Dispose the connection afterwards to free it. Safe from any
    /// thread while the application reads or writes on others: a write in progress then ends with a
    /// completed <see cref="FlushResult"/>, never an exception, and so does every write after it.
    /// </summary>
    /// <param name="abortReason">Why: what the connection's reads report.</param>
    public override void Abort(ConnectionAbortedException abortReason)
    {
        // Completing the output alone waited for the peer to take what was queued first: a write
        // stuck on a server that stopped reading stayed stuck, though ConnectionClosed had fired.
        _secure.Abort(abortReason);
        _socketPipe.Abort();
        SignalClosed();
    }

    /// <summary>
    /// Sends Disconnect and closes the socket (see the class remarks). Safe to call more than once, and
    /// from several threads at once: the first call does the work, and the others return once it is done.
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        // Only the first call does anything, as IAsyncDisposable asks: a bounded explicit dispose
        // followed by `await using`'s own used to throw ObjectDisposedException from the disposed token source.
        // The others wait for it, as Kestrel's connections do: one that returned at once let its caller go
        // on (or its process exit) while the Disconnect and the last bytes had not yet gone.
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Interlocked.CompareExchange(ref _disposal, mine.Task, null) is { } first)
        {
            await first.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // that call reports its own failure
        }
        else
        {
            try
            {
                await _secure.DisposeAsync().ConfigureAwait(false);
                await _socketPipe.CloseAsync().ConfigureAwait(false); // after the server's close, if it is still sending (see the class remarks)
            }
            finally
            {
                // Done before the callbacks run: one that disposes the connection again and blocks on
                // it (they run on this thread) would otherwise wait for itself.
                mine.SetResult();
                SignalClosed();
            }
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    // The source is cancelled but not disposed: a reader that fetched it just before may still ask for its token.
    private void SignalClosed()
    {
        CancellationTokenSource? source = Interlocked.Exchange(ref _closed, AlreadyClosed);
        if (source is null || source == AlreadyClosed)
        {
            return;
        }

        try
        {
            source.Cancel();
        }
        catch (AggregateException ex)
        {
            // The application's callbacks threw (Cancel runs them all first). Its failure, reported as
            // Kestrel's transports report it: thrown, it escaped Abort and DisposeAsync into whoever
            // closed the connection, or, when the server closed it, vanished in a faulted continuation.
            LogLevel level = _telemetry.Faults.Next($"{nameof(ConnectionClosed)}: {ex.InnerException?.GetType().FullName}", out int heldBack);
            OssuaryLog.ConnectionClosedCallbackFailed(_telemetry.Logger, level, ConnectionId, heldBack, ex);
        }
    }

    private static CancellationTokenSource CreateCancelled()
    {
        var source = new CancellationTokenSource();
        source.Cancel();
        return source;
    }
}
