using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// Reads a device's readings off its Ossuary connection, counts them in the registry and queues them
/// for the store. When the queue is full the handler stops reading until there is room (backpressure
/// through the pipes and TCP to the device); a reading is never dropped. A <c>sync</c> line is answered,
/// once the store has every reading before it, with how many this connection gave it
/// (<see cref="ReadingParser.SyncLine"/>). The device
/// is whoever proved its key in the handshake (<see cref="IOssuaryConnectionFeature.RemotePublicKey"/>):
/// nothing in the readings themselves claims an identity.
/// </summary>
public sealed partial class TelemetryConnectionHandler(TelemetryRegistry registry, ReadingQueue queue, TimeProvider time, ILogger<TelemetryConnectionHandler> logger) : ConnectionHandler
{
    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        OssuaryPublicKey? device = connection.Features.Get<IOssuaryConnectionFeature>()?.RemotePublicKey;
        if (device is null)
        {
            // Only an unauthenticated listener admits anonymous clients; this one counts devices by key.
            LogAnonymous(logger, connection.ConnectionId);
            return;
        }

        DeviceStats stats = registry.Connect(device);
        string deviceHex = device.ToString();

        // Shutdown completes the queue only after this handler has queued what it parsed.
        queue.AddProducer();

        // On shutdown Kestrel asks connections to close; completing our output sends the device a
        // Disconnect, which ends the input too. Without this, shutdown waits for its timeout.
        var replies = new DeviceReplies(connection.Transport.Output);
        using CancellationTokenRegistration closing = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?
            .ConnectionClosedRequested.Register(static replies => _ = ((DeviceReplies)replies!).CloseAsync(), replies) ?? default;
        // A store failure ends even a connection whose device is between readings, and one that
        // connects afterwards (the token is already cancelled: the read is cancelled before it starts).
        using CancellationTokenRegistration storeFailed = queue.Failed.UnsafeRegister(static input => ((PipeReader)input!).CancelPendingRead(), connection.Transport.Input);
        try
        {
            // Not ReadAsync(connection.ConnectionClosed): Kestrel fires that token as soon as the
            // device closes its socket, which can be before this handler has read the last readings
            // (already decrypted into the pipe). The pipe's own end is the reliable signal: it completes
            // after the device's Disconnect, and throws OssuaryException if the device just vanished.
            await ReadAllAsync(connection.Transport.Input, replies, stats, deviceHex);
        }
        catch (OssuaryException ex)
        {
            // The device vanished without a Disconnect, or its bytes failed to authenticate.
            LogDropped(logger, device, ex.Reason);
        }
        catch (System.Threading.Channels.ChannelClosedException ex)
        {
            // The store failed (the writer logged why): end the connection rather than accept
            // readings that cannot be stored. The device resends what it could not deliver.
            // The innermost reason (the store's own): the writer wraps it in "see the inner exception".
            // Once at Warning, with the store's reason: every connection ends with the store, and 20,000
            // devices' lines at Warning buried the writer's one Error (1701) that says what was lost.
            if (queue.FirstToSayFailure())
            {
                LogStoreClosed(logger, device, ex.GetBaseException().Message);
            }
            else
            {
                LogStoreClosedAgain(logger, device);
            }

            connection.Abort(new ConnectionAbortedException("The readings store is unavailable.", ex));
        }
        finally
        {
            queue.RemoveProducer();
            registry.Disconnect(stats);
        }
    }

    private async Task ReadAllAsync(PipeReader input, DeviceReplies replies, DeviceStats stats, string device)
    {
        long queued = 0; // by this connection: a sync is answered with it once they are stored
        while (true)
        {
            ReadResult read = await input.ReadAsync();
            if (read.IsCanceled)
            {
                // Only the store's failure cancels a read.
                queue.ThrowIfFailed();
            }

            ReadOnlySequence<byte> buffer = read.Buffer;

            // The queue is full: wait for room while holding the unread buffer, so no more is read
            // from this device until the store catches up. A sync is answered once every reading
            // before it is stored.
            Pause pause;
            while ((pause = ReadLines(ref buffer, stats, device, ref queued, out StoredReading waiting)) != Pause.None)
            {
                if (pause == Pause.QueueFull)
                {
                    await queue.EnqueueAsync(waiting, CancellationToken.None);
                    queued++;
                }
                else
                {
                    await queue.SyncAsync(CancellationToken.None);
                    await replies.AcknowledgeAsync(queued);
                }
            }

            if (buffer.Length > ReadingParser.MaxLineLength)
            {
                stats.Reject();
                LogLineTooLong(logger, stats.Key);
                return;
            }

            // Consumed up to the last complete line; examined everything, so the next read waits for more.
            bool partialLine = !buffer.IsEmpty;
            input.AdvanceTo(buffer.Start, buffer.End);
            if (read.IsCompleted || read.IsCanceled)
            {
                if (read.IsCompleted && partialLine)
                {
                    // The device ended in the middle of a line: not a reading, but counted, so the loss shows.
                    stats.Reject();
                }

                return;
            }
        }
    }

    /// <summary>Why <see cref="ReadLines"/> stopped before the end of the buffer.</summary>
    private enum Pause
    {
        None,
        QueueFull,
        Sync,
    }

    /// <summary>
    /// Parses and queues complete lines, counting them in <paramref name="queued"/>. Stops at a full queue,
    /// with the reading that did not fit in <paramref name="waiting"/>, and at a sync, to be answered.
    /// </summary>
    private Pause ReadLines(ref ReadOnlySequence<byte> buffer, DeviceStats stats, string device, ref long queued, out StoredReading waiting)
    {
        Span<byte> scratch = stackalloc byte[ReadingParser.MaxLineLength];
        waiting = default;
        while (ReadingParser.TryReadLine(ref buffer, out ReadOnlySequence<byte> line))
        {
            if (line.IsEmpty)
            {
                continue;
            }

            if (ReadingParser.IsSync(line))
            {
                return Pause.Sync;
            }

            if (ReadingParser.TryParse(line, scratch, out Reading reading))
            {
                string sensor = registry.SensorNames.Get(reading.Sensor);
                var stored = new StoredReading(device, reading.Sequence, sensor, reading.Value, reading.TimestampMs ?? time.GetUtcNow().ToUnixTimeMilliseconds(), Untimed: reading.TimestampMs is null);

                // The measurement with the number, so that another reading under a number the device used
                // (a reboot) is not counted as a resend of it: the store keeps it, as new data.
                stats.Record(sensor, reading.Value, reading.Sequence, reading.Sequence is null ? 0 : ReadingFingerprint.Hash(stored));
                if (!queue.TryEnqueue(stored))
                {
                    waiting = stored;
                    return Pause.QueueFull;
                }

                queued++;
            }
            else
            {
                stats.Reject();
            }
        }

        return Pause.None;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection {ConnectionId} is anonymous; telemetry needs an authenticated device.")]
    private static partial void LogAnonymous(ILogger logger, string connectionId);

    // Debug: the device's doing (or its network's), as the README's logging rules have it for what a peer
    // causes; at Information a fleet of flaky devices filled the log with one line per lost connection.
    [LoggerMessage(Level = LogLevel.Debug, Message = "Device {Device} dropped its connection: {Reason}.")]
    private static partial void LogDropped(ILogger logger, OssuaryPublicKey device, OssuaryErrorReason reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Device {Device}'s connection ended because the readings store is unavailable: {Reason} (said once: the other connections it ends are logged at Debug)")]
    private static partial void LogStoreClosed(ILogger logger, OssuaryPublicKey device, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Device {Device}'s connection ended because the readings store is unavailable.")]
    private static partial void LogStoreClosedAgain(ILogger logger, OssuaryPublicKey device);

    // Debug, as a dropped connection: the device's fault (the project's rule for what a peer causes),
    // and at Information one that reconnected to repeat it put a line in the log at every connection.
    // The operator sees it without the log: the line is counted as rejected (the table, the metric).
    [LoggerMessage(Level = LogLevel.Debug, Message = "Device {Device} sent a line longer than the limit; closing its connection.")]
    private static partial void LogLineTooLong(ILogger logger, OssuaryPublicKey device);
}
