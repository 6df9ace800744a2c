using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A second read that lands while the input is handing the first, waiting read its result: it is
/// refused as any second read is, and the first gets its bytes. The input let reads in again before
/// it had claimed the pipe's result, and a pipe takes a read as begun only when its result is claimed:
/// the second read went to the pipe and got the bytes, and the first, the one that kept the rule,
/// failed with the pipe's "Reading is already in progress". The window is a few instructions wide
/// on the inbound loop's thread; the inner reader here holds it open. A TryRead is a read too.
/// </summary>
public sealed class SecondReadDuringHandOverTests
{
    [Fact]
    public async Task ASecondReadWhileTheFirstIsHandedItsResultIsRefusedAndTheFirstGetsTheBytes()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("arrived"u8.ToArray());
        var inner = new HandOverHoldingReader(pipe.Reader);
        var input = new PlaintextReader(inner);

        Task<ReadResult> first = input.ReadAsync().AsTask(); // waits: the inner read is pending
        Task delivered = Task.Run(inner.Deliver); // the inbound loop's thread: the result's hand-over begins
        try
        {
            await inner.HandingOver.Within(); // the input is claiming the first read's result

            InvalidOperationException refused = await Assert.ThrowsAsync<InvalidOperationException>(() => input.ReadAsync().AsTask());
            Assert.Contains("Concurrent reads", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            inner.FinishHandingOver();
        }

        await delivered.Within();
        ReadResult read = await first.Within();
        Assert.Equal("arrived"u8.ToArray(), read.Buffer.ToArray());
        input.AdvanceTo(read.Buffer.End);
    }

    /// <summary>
    /// The same for a TryRead made while a read waits: the pipe held bytes the waiting read had not
    /// been handed yet, TryRead took them, and the waiting read then failed ("Reading is already in progress").
    /// </summary>
    [Fact]
    public async Task ATryReadWhileAReadWaitsIsRefusedAndTheWaitingReadGetsTheBytes()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("arrived"u8.ToArray());
        var inner = new HandOverHoldingReader(pipe.Reader);
        var input = new PlaintextReader(inner);

        Task<ReadResult> waiting = input.ReadAsync().AsTask(); // the bytes are in the pipe; the read has not been handed them
        InvalidOperationException refused = Assert.Throws<InvalidOperationException>(() => input.TryRead(out _));
        Assert.Contains("Concurrent reads", refused.Message, StringComparison.Ordinal);

        inner.FinishHandingOver();
        await Task.Run(inner.Deliver).Within();
        ReadResult read = await waiting.Within();
        Assert.Equal("arrived"u8.ToArray(), read.Buffer.ToArray());
        input.AdvanceTo(read.Buffer.End);
    }

    /// <summary>
    /// A pipe's reader whose first read completes when told (<see cref="Deliver"/>, on the caller's
    /// thread, as a pipe with an inline reader scheduler completes it on its writer's) and whose
    /// result is claimed from the pipe, as a pipe claims it, only once <see cref="FinishHandingOver"/> is called.
    /// Later reads go straight to the pipe.
    /// </summary>
    private sealed class HandOverHoldingReader(PipeReader inner) : PipeReader, IValueTaskSource<ReadResult>
    {
        private readonly TaskCompletionSource _handingOver = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _finish = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Action<object?>? _continuation;
        private object? _state;
        private int _reads;

        public Task HandingOver => _handingOver.Task;

        public void FinishHandingOver() => _finish.TrySetResult();

        public void Deliver() => _continuation!(_state);

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _reads) == 1 ? new ValueTask<ReadResult>(this, 0) : inner.ReadAsync(cancellationToken);

        public override bool TryRead(out ReadResult result) => inner.TryRead(out result);

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        ReadResult IValueTaskSource<ReadResult>.GetResult(short token)
        {
            _handingOver.TrySetResult();
            _finish.Task.Wait(TestTimeout.Default);
            return inner.ReadAsync().AsTask().GetAwaiter().GetResult(); // the pipe claims the read now
        }

        ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) =>
            _continuation is null ? ValueTaskSourceStatus.Pending : ValueTaskSourceStatus.Succeeded;

        void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            _state = state;
            _continuation = continuation;
        }
    }
}
