namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The Begin/End members over the task-based ones, as SslStream and NetworkStream have them.
/// Stream's own run every Begin call on one semaphore, so a BeginWrite made while a BeginRead waited
/// for the peer blocked its caller until that read ended: one read and one write at once, which this
/// stream promises, deadlocked a client that sent a request while waiting to read the answer.
/// </summary>
public sealed partial class OssuaryStream
{
    /// <inheritdoc />
    public override IAsyncResult BeginRead(byte[] buffer, int offset, int count, AsyncCallback? callback, object? state) =>
        TaskToAsyncResult.Begin(ReadAsync(buffer, offset, count, CancellationToken.None), callback, state);

    /// <inheritdoc />
    public override int EndRead(IAsyncResult asyncResult) => TaskToAsyncResult.End<int>(asyncResult);

    /// <inheritdoc />
    public override IAsyncResult BeginWrite(byte[] buffer, int offset, int count, AsyncCallback? callback, object? state) =>
        TaskToAsyncResult.Begin(WriteAsync(buffer, offset, count, CancellationToken.None), callback, state);

    /// <inheritdoc />
    public override void EndWrite(IAsyncResult asyncResult) => TaskToAsyncResult.End(asyncResult);
}
