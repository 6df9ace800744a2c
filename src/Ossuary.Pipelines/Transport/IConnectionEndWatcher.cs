namespace Ossuary.Pipelines.Transport;

/// <summary>
/// Told once, on the thread pool, when an <see cref="OssuaryDuplexPipe"/> has ended under its application
/// (see <see cref="OssuaryDuplexPipe.WatchEnd"/>): what <c>OssuaryClientConnection.ConnectionClosed</c> follows.
/// </summary>
/// <remarks>
/// An interface the watcher implements, not a task the pipe completes: an idle client connection kept a
/// <see cref="TaskCompletionSource"/>, a <c>WhenAll</c>, a <c>WhenAny</c> and a continuation alive for it
/// (about 360 B a connection, most of what the server's side, which never watched, held too).
/// </remarks>
internal interface IConnectionEndWatcher
{
    /// <summary>The connection has ended under the application.</summary>
    void OnEndedForApplication();
}
