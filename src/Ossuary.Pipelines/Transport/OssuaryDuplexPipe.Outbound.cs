using System.Buffers;
using System.IO.Pipelines;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Transport;

public sealed partial class OssuaryDuplexPipe
{
    /// <summary>
    /// Application → transport, and the only writer of the transport. Whatever one read returns
    /// (everything the application flushed) is sealed now, in frames of at most 16,384 bytes,
    /// straight into the transport writer's memory: nothing waits to fill a frame.
    /// </summary>
    private async Task RunOutboundAsync()
    {
        PlaintextOutput application = _output;
        PipeWriter transport = _transport.Output;
        Exception? failure = null;
        bool abandoned = false;
        long sealedBytes = 0;
        long sealedFrames = 0;
        long countedBytes = 0; // of sealedBytes, what the metrics have: a flush that failed sent nothing
        long countedFrames = 0;
        try
        {
            while (true)
            {
                Exception? applicationFailure = null;
                bool readThrew = false;
                ReadResult read;
                try
                {
                    read = await application.ReadOutboundAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The output itself failed (it parks an application's exception instead, below):
                    // nothing more can be read, so tell the peer it failed.
                    applicationFailure = ex;
                    readThrew = true;
                    read = new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);
                }

                // The application completed its output with an error, or an abort parked its reason and
                // cancelled this read (see PlaintextOutput): what was written before is sealed below,
                // then the Disconnect tells the peer it failed. Disposal under a write in progress
                // cancels it too: the output ends with what was flushed. That write (GetMemory, not yet Advance)
                // commits what it puts in only as its call ends, after the Disconnect below, so it is never sent:
                // a clean Disconnect told the peer it had everything, the error flag says it may not. Looked at
                // once: a write that ended since disposal's wake-up completed the pipe, and the next read has its bytes.
                bool writeCut = read.IsCanceled && !read.IsCompleted && _output.CompletionWaiting;
                bool ended = read.IsCompleted || (read.IsCanceled && (_output.Failure is not null || writeCut));
                if (ended && _output.Failure is { } parked)
                {
                    applicationFailure ??= parked;
                }

                writeCut &= applicationFailure is null; // an abort's reason says more
                bool applicationFailed = applicationFailure is not null;
                ReadOnlySequence<byte> buffer = read.Buffer;
                bool finished;
                bool carriesOurs = false; // the flush below carries frames or our Disconnect
                lock (SessionLock)
                {
                    if (_session.IsEstablished)
                    {
                        carriesOurs = ended || !buffer.IsEmpty;
                        buffer = Seal(buffer, transport, ref sealedFrames);
                        sealedBytes += read.Buffer.Length - buffer.Length;
                        if (ended)
                        {
                            _session.Disconnect(applicationFailed || writeCut);
                            _saidGoodbye = true;
                            _closedByApplication = !applicationFailed && !writeCut;
                            _applicationFailure = applicationFailure;
                        }
                    }

                    while (_session.WriteHandshake(transport) > 0)
                    {
                    }

                    finished = _session.State == OssuarySessionState.Closed;
                }

                if (!readThrew)
                {
                    application.AdvanceOutboundTo(ended || finished ? read.Buffer.End : buffer.End);
                }

                if (writeCut && carriesOurs)
                {
                    // The application's own race with its disposal, which the docs allow: at Debug, as disposal's other drops are said.
                    _writeCut = WriteCutByDisposal();
                    OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, _writeCut);
                }

                FlushResult flushed = await transport.FlushAsync().ConfigureAwait(false);
                if (!flushed.IsCanceled && !flushed.IsCompleted)
                {
                    ReportSent(sealedBytes);

                    // Counted once the transport took them, not once sealed into its buffer: bytes of a
                    // flush that failed were counted as sent. One addition a flush, not one a frame.
                    if (sealedFrames != countedFrames)
                    {
                        _telemetry.Metrics.FramesFlushed(sealedFrames - countedFrames, sealedBytes - countedBytes, _telemetry.Logger);
                        countedFrames = sealedFrames;
                        countedBytes = sealedBytes;
                    }
                }
                else if (flushed.IsCompleted && !flushed.IsCanceled && carriesOurs)
                {
                    // Kestrel ends its side of the output when its send fails (the peer's reset, a broken pipe)
                    // or the connection is aborted, and says so only this way: what this flush carried, our
                    // Disconnect among it, never left. Taken for a sent goodbye, the server waited for the
                    // peer's close and ended the input as cleanly as if the peer had read it.
                    failure = OutputEndedUnderUs();
                    _closedByApplication = false; // a reset or abort that follows is not the end we asked for

                    // Said by the input, as any failure of the transport's: Kestrel's receive fails or ends with the
                    // send (a reset, the kernel giving the connection up), and both loops said it, one line each.
                    _outputFailureLeftToInput = true;
                    break;
                }

                if (flushed.IsCanceled)
                {
                    abandoned = true; // only disposal cancels the flush: it gave up on a peer that stopped reading
                    break;
                }

                if (finished || ended || flushed.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            failure = ex;
            if (LocalFault.IsLocal(ex))
            {
                // Not the peer's doing (a bug, say), as the inbound loop has it: loud. An I/O failure is
                // the transport's, and the input, which fails with it, reports that at Debug.
                _telemetry.ReportLocalFault(ex);
            }
            else
            {
                _outputFailureLeftToInput = true; // the inbound loop says it where the input does not
            }
        }

        // Before the application's writes see the output completed: they report this, not a clean close.
        _outboundFailure = failure;
        try
        {
            application.CompleteOutboundReader();

            // Completed cleanly, a stream transport's writer (PipeWriter.Create) writes what it still
            // holds to the stream, with no way left to cancel it: for a peer that stopped reading,
            // that write never returns, and neither did disposal. An abandoned transport is aborted.
            // Over a transport that closes its socket with the output (Kestrel's), not while the peer is
            // still sending: the inbound loop completes it then (see LingerAsync).
            try
            {
                if (!DeferOutputCompletion(failure is not null || abandoned))
                {
                    // Before the completion, which Kestrel's input answers with an abort: that one is ours.
                    _outputCompletedByUs = failure is null && !abandoned;
                    await transport.CompleteAsync(failure ?? (abandoned ? new OperationCanceledException(
                        "The Ossuary connection was disposed while the peer was not reading; its last bytes were dropped.") : null)).ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                // A stream transport's writer writes what it holds as it completes, and throws if the
                // stream does: the last bytes (the Disconnect at least) may not have gone. Reported as
                // any failure of the output, not thrown from disposal, which still has keys to zero.
                ReportTransportCompletionFailure(ex);
                failure ??= ex;
            }
        }
        finally
        {
            // Whatever happens above, a flush waiting for bytes that will never be sent must end.
            _outboundFailed = failure is not null || abandoned;
            _outboundEnded = true;
            Interlocked.Exchange(ref _sentSignal, null)?.TrySetResult();
        }
    }

    /// <summary>
    /// Completes once <paramref name="total"/> plaintext bytes written to <see cref="Output"/> have
    /// been sealed and the transport's flush has taken them (for a stream transport: written to the
    /// stream and the stream flushed). <see cref="Integrations.OssuaryStream.FlushAsync(CancellationToken)"/> waits here.
    /// </summary>
    /// <exception cref="OssuaryException">The connection ended before they were (the output's end, or the peer's: its Disconnect, a Reset, a failure).</exception>
    internal async Task WhenSentAsync(long total, CancellationToken cancellationToken)
    {
        while (Volatile.Read(ref _sentBytes) < total)
        {
            // The peer's end counts too: the output may stay stuck on a peer that said goodbye and stopped
            // reading until disposal, and what it has not sent by now is discarded by the peer anyway.
            if (_outboundEnded || _output.ConnectionEnded)
            {
                // Disposal cut a write: the direct cause, ahead of how the input ended after it (our disposal's doing too).
                const string Unsent = "The Ossuary connection ended before everything written to it was sent.";
                throw _writeCut is { } cut ? new OssuaryException(OssuaryErrorReason.ConnectionFailed, $"{Unsent} {cut.Message}", cut)
                    : ClosedException(_outboundFailed ? OssuaryErrorReason.ConnectionFailed : OssuaryErrorReason.ConnectionClosed, Unsent);
            }

            var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            TaskCompletionSource signal = Interlocked.CompareExchange(ref _sentSignal, fresh, null) ?? fresh;

            // The loop may have moved on between the first check and publishing the signal. The
            // CompareExchange above is a full fence, so this read cannot pass it (see ReportSent).
            if (Volatile.Read(ref _sentBytes) >= total || _outboundEnded || _output.ConnectionEnded)
            {
                continue;
            }

            await signal.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>What a transport output that ended under a flush of our frames or Disconnect means (the peer's or the host's doing).</summary>
    internal static OssuaryException OutputEndedUnderUs() => new(OssuaryErrorReason.ConnectionFailed,
        "The transport's output ended under the last bytes written (the peer reset the connection, or it was aborted): "
        + "they, and the Disconnect if it was among them or still to come, did not reach the peer.");

    /// <summary>What disposal under a write in progress means: that write's bytes are not sent, and the peer is told so.</summary>
    internal static OssuaryException WriteCutByDisposal() => new(OssuaryErrorReason.ConnectionFailed,
        "The Ossuary connection was disposed while the application was inside a write (between GetMemory and Advance): "
        + "what that write puts in the output is not sent, so the peer was sent Disconnect (error), not a clean one.");

    /// <summary>What an output whose transport failed under its write means, where the input did not fail with it.</summary>
    internal static OssuaryException OutputFailedUnderUs(Exception failure) => new(OssuaryErrorReason.ConnectionFailed,
        $"The transport failed under the output ({failure.Message}): the bytes written last, and the Disconnect, may not have reached the peer.", failure);

    private void ReportSent(long sealedBytes)
    {
        // A store-then-load handshake with WhenSentAsync, which publishes its signal and then reads
        // the count: each side must store before it loads, or both can read the other's old value
        // (the loop sees no signal, the waiter sees the old count) and the wake-up is lost. Volatile
        // gives no such order (a store may pass a later load of another field, even on x64), so the
        // count is published with a full fence, as the waiter publishes its signal with CompareExchange.
        Interlocked.Exchange(ref _sentBytes, sealedBytes);
        if (Volatile.Read(ref _sentSignal) is not null)
        {
            Interlocked.Exchange(ref _sentSignal, null)?.TrySetResult();
        }
    }

    private ReadOnlySequence<byte> Seal(ReadOnlySequence<byte> buffer, PipeWriter transport, ref long frames)
    {
        while (!buffer.IsEmpty)
        {
            ReadOnlySequence<byte> frame = buffer.Slice(0, Math.Min(buffer.Length, OssuarySession.MaxPlaintextLength));
            _session.WriteData(frame, transport);
            frames++;
            buffer = buffer.Slice(frame.End);
        }

        return buffer;
    }
}
