using System.Buffers;
using System.IO.Pipelines;

namespace Ossuary.Pipelines.Transport;

/// <summary>The input's cancellations: <see cref="CancelPendingRead"/> and a waiting read's token.</summary>
internal sealed partial class PlaintextInput
{
    public override void CancelPendingRead()
    {
        lock (Writer)
        {
            if (!_readWaiting)
            {
                _readCancelPending = true;
                return;
            }

            // A read CancelPendingRead ended is not one the application holds: a Pipe lets its reader read
            // again or complete without AdvanceTo, and PipeReader.AsStream() never advances after one. So
            // it gets an empty buffer, nothing consumed or examined (the next read still waits for new bytes,
            // or returns those that came meanwhile), and disposal need not wait for its AdvanceTo.
            _handedOurs = true;
            CompleteWaitingRead(new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: true, isCompleted: false), null);
        }
    }

    private void CancelRead(CancellationToken token)
    {
        lock (Writer)
        {
            if (_readWaiting && _readToken == token)
            {
                _readWaiting = false;
                _readCancellation = default;
                _readToken = default;
                _read.SetException(new OperationCanceledException(token));
            }
        }
    }
}
