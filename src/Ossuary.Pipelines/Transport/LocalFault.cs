namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A failure of this side rather than of the peer: a callback of the application that threw, or an
/// exception the handshake did not expect (a disposed identity, a bug). The peer is told with
/// Disconnect (error), and the failure is logged at Error, because only the operator can fix it.
/// </summary>
internal sealed class LocalFault : Exception
{
    public LocalFault(string site, Exception cause)
        : base($"{site} threw {cause.GetType().Name}: {cause.Message}", cause)
    {
        Site = site;
    }

    /// <summary>Where it happened, e.g. <c>AuthorizeClient</c>: with the exception type, the cause logs are limited by.</summary>
    public string Site { get; }

    /// <summary>
    /// True for failures that are ours. The peer and the network cause <see cref="IOException"/>s
    /// (<see cref="OssuaryException"/> among them), <see cref="System.Net.Sockets.SocketException"/>s
    /// (Kestrel's transport passes on a socket error that is not a reset or an abort: a vanished peer's
    /// keep-alive or retransmission timeout) and cancellations (timeouts, a closed connection);
    /// anything else escaping the handshake is ours.
    /// </summary>
    public static bool IsLocal(Exception exception) =>
        exception is LocalFault || exception is not (IOException or System.Net.Sockets.SocketException or OperationCanceledException);

    /// <summary>The cause's key for rate limiting: where, and what type of exception.</summary>
    public static string CauseOf(Exception exception) => exception is LocalFault fault
        ? $"{fault.Site}: {fault.InnerException!.GetType().FullName}"
        : $"handshake: {exception.GetType().FullName}";
}
