using System.IO.Pipelines;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The adapter's one timer per handshake: the whole handshake's timeout cancels the token (and
/// says so), a step's deadline cancels only that step's read, and an ended step is left alone.
/// </summary>
public class HandshakeTimerTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);
    private readonly FakeTimeProvider _time = new();
    private readonly Pipe _transport = new();

    [Fact]
    public async Task AStepsDeadlineCancelsItsReadAndNotTheHandshake()
    {
        using var timer = new HandshakeTimer(_time, TimeSpan.FromSeconds(10), CancellationToken.None);
        timer.StartStep(_transport.Reader, TimeSpan.FromSeconds(3));
        ValueTask<ReadResult> read = _transport.Reader.ReadAsync(timer.Token);

        _time.Advance(TimeSpan.FromSeconds(3) - Tick);
        Assert.False(read.IsCompleted);
        _time.Advance(Tick);

        ReadResult result = await read;
        Assert.True(result.IsCanceled);
        Assert.False(timer.Token.IsCancellationRequested);
        Assert.False(timer.TimedOut);
    }

    [Fact]
    public async Task TheHandshakesTimeoutCancelsTheTokenEvenWithAStepUnderWay()
    {
        using var timer = new HandshakeTimer(_time, TimeSpan.FromSeconds(10), CancellationToken.None);
        for (int step = 0; step < 3; step++)
        {
            timer.StartStep(_transport.Reader, TimeSpan.FromSeconds(3));
            ReadResult stepRead = await AdvanceUntilDoneAsync(_transport.Reader.ReadAsync(timer.Token));
            Assert.True(stepRead.IsCanceled);
            timer.EndStep();
        }

        // 9 s have passed; the next step's 3 s would end at 12 s, the handshake's at 10 s.
        timer.StartStep(_transport.Reader, TimeSpan.FromSeconds(3));
        ValueTask<ReadResult> read = _transport.Reader.ReadAsync(timer.Token);
        _time.Advance(TimeSpan.FromSeconds(1) - Tick);
        Assert.False(read.IsCompleted);
        _time.Advance(Tick);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await read);
        Assert.True(timer.TimedOut);
    }

    [Fact]
    public async Task AnEndedStepsDeadlineCancelsNothing()
    {
        using var timer = new HandshakeTimer(_time, TimeSpan.FromSeconds(10), CancellationToken.None);
        timer.StartStep(_transport.Reader, TimeSpan.FromSeconds(3));
        timer.EndStep();

        _time.Advance(TimeSpan.FromSeconds(5));
        ValueTask<ReadResult> read = _transport.Reader.ReadAsync(timer.Token);
        Assert.False(read.IsCompleted);

        await _transport.Writer.WriteAsync(new byte[] { 1 });
        ReadResult result = await read;
        Assert.False(result.IsCanceled);
        Assert.False(timer.TimedOut);
    }

    [Fact]
    public void TheCallersCancellationIsNotATimeout()
    {
        using var caller = new CancellationTokenSource();
        using var timer = new HandshakeTimer(_time, TimeSpan.FromSeconds(10), caller.Token);

        caller.Cancel();

        Assert.True(timer.Token.IsCancellationRequested);
        Assert.False(timer.TimedOut);
    }

    private async Task<ReadResult> AdvanceUntilDoneAsync(ValueTask<ReadResult> read)
    {
        for (int i = 0; i < 10 && !read.IsCompleted; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        return await read;
    }
}
