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
        PipeReader application = _output.Reader;
        PipeWriter transport = _transport.Output;
        Exception? failure = null;
        try
        {
            while (true)
            {
                bool applicationFailed = false;
                ReadResult read;
                try
                {
                    read = await application.ReadAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The application completed its output with an error: tell the peer it failed.
                    applicationFailed = true;
                    read = new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);
                }

                ReadOnlySequence<byte> buffer = read.Buffer;
                bool finished;
                lock (_sessionLock)
                {
                    if (_session.IsEstablished)
                    {
                        buffer = Seal(buffer, transport);
                        if (read.IsCompleted)
                        {
                            _session.Disconnect(applicationFailed);
                        }
                    }

                    while (_session.WriteHandshake(transport) > 0)
                    {
                    }

                    finished = _session.State == OssuarySessionState.Closed;
                }

                if (!applicationFailed)
                {
                    application.AdvanceTo(read.IsCompleted || finished ? read.Buffer.End : buffer.End);
                }

                FlushResult flushed = await transport.FlushAsync().ConfigureAwait(false);
                if (finished || read.IsCompleted || flushed.IsCompleted || flushed.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        await application.CompleteAsync().ConfigureAwait(false);
        await transport.CompleteAsync(failure).ConfigureAwait(false);
    }

    private ReadOnlySequence<byte> Seal(ReadOnlySequence<byte> buffer, PipeWriter transport)
    {
        while (!buffer.IsEmpty)
        {
            ReadOnlySequence<byte> frame = buffer.Slice(0, Math.Min(buffer.Length, OssuarySession.MaxPlaintextLength));
            _session.WriteData(frame, transport);
            _telemetry.Metrics.FramesSent.Add(1);
            _telemetry.Metrics.BytesSent.Add(frame.Length);
            buffer = buffer.Slice(frame.End);
        }

        return buffer;
    }
}
