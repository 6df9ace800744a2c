using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Opens the client's socket to an <see cref="IPEndPoint"/>, a <see cref="DnsEndPoint"/> (every
/// resolved address in the resolver's order, IPv6 and IPv4 alike, as
/// <c>Socket.ConnectAsync(DnsEndPoint)</c> does) or a <see cref="UnixDomainSocketEndPoint"/>, within a timeout.
/// Every address of a name but the last is given up on after its share of the time left (see <see cref="Share"/>).
/// </summary>
internal static class SocketConnector
{
    // The longest delay CancelAfter accepts (about 49.7 days); the options take any positive
    // timeout, and one longer than this is as good as none for a connect.
    private static readonly TimeSpan LongestTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    // The least an address that is not a name's last is given before the next is tried: a connect on
    // a slow path (a loaded machine, a distant server) still completes within it.
    private static readonly TimeSpan ShortestShare = TimeSpan.FromSeconds(2);

    /// <exception cref="SocketException">No address could be reached, the name did not resolve, or the timeout ran out (<see cref="SocketError.TimedOut"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="NotSupportedException"><paramref name="endpoint"/> is none of the three kinds a socket is opened to.</exception>
    public static Task<Socket> ConnectAsync(EndPoint endpoint, TimeSpan timeout, CancellationToken cancellationToken) =>
        ConnectAsync(endpoint, timeout, Dns.GetHostAddressesAsync, cancellationToken);

    /// <summary>As above, with the name resolver given (tests: a machine whose resolver maps no name to ::1).</summary>
    internal static async Task<Socket> ConnectAsync(EndPoint endpoint, TimeSpan timeout, Func<string, AddressFamily, CancellationToken, Task<IPAddress[]>> resolve, CancellationToken cancellationToken)
    {
        if (endpoint is not (IPEndPoint or DnsEndPoint or UnixDomainSocketEndPoint))
        {
            // Kestrel's other endpoints (UriEndPoint, NamedPipeEndPoint) open no socket: EndPoint.AddressFamily
            // threw NotImplementedException for them. Refused as Kestrel's SocketConnectionFactory refuses them.
            throw new NotSupportedException(
                $"Ossuary connects to an IPEndPoint, a DnsEndPoint or a UnixDomainSocketEndPoint, not a {endpoint.GetType().Name} ({endpoint}).");
        }

        long started = Stopwatch.GetTimestamp();
        bool bounded = timeout != Timeout.InfiniteTimeSpan && timeout < LongestTimeout;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (bounded)
        {
            bound.CancelAfter(timeout);
        }

        // How each address of a name tried before failed: a timeout on the last said only "timed out", and
        // an operator could not tell that an earlier address had refused (a server down on one of them).
        // Made for a name only: an address has one attempt, and every connect paid for both.
        List<string>? failures = null;
        StrongBox<bool>? resolving = null;
        try
        {
            return endpoint switch
            {
                DnsEndPoint name => await ConnectToNameAsync(name, resolve, bounded ? (started, timeout) : null, failures = [], resolving = new(true), bound.Token).ConfigureAwait(false),
                _ => await ConnectToAddressAsync(endpoint, bound.Token).ConfigureAwait(false),
            };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A SocketException carries no inner exception: the causes go in its message. A name still being
            // looked up is said as such: "did not complete" alone sent an operator to the server's address and
            // its firewall, when it was the name's resolver that never answered and no address had been tried.
            // A name as the caller gave it: DnsEndPoint's own "Unspecified/host:port" read as a mangled host name.
            string within = $"{timeout.TotalSeconds:0.###} s";
            string message = endpoint is not DnsEndPoint name
                ? $"Connecting to {endpoint} did not complete within {within}."
                : resolving!.Value
                ? $"Connecting to {name.Host}:{name.Port} did not complete within {within}: the host name '{name.Host}' had not resolved (the resolver did not answer), so no address was tried."
                : $"Connecting to {name.Host}:{name.Port} did not complete within {within}{(failures!.Count == 0 ? "." : $"; before that, {string.Join("; ", failures)}.")}";
            throw new SocketException((int)SocketError.TimedOut, message);
        }
        catch (OperationCanceledException ex) when (ex.CancellationToken != cancellationToken)
        {
            // The caller's token was cancelled; the exception named the linked one, which the caller cannot recognise.
            throw new OperationCanceledException(ex.Message, ex, cancellationToken);
        }
    }

    /// <summary>
    /// Every address of <paramref name="endpoint"/> in turn; <paramref name="bound"/>: when the timeout started and its length,
    /// null when it is none a timer can take. Each address that fails is told to <paramref name="failures"/>, as its exception's message;
    /// <paramref name="resolving"/> is cleared once the name has resolved.
    /// </summary>
    private static async Task<Socket> ConnectToNameAsync(DnsEndPoint endpoint, Func<string, AddressFamily, CancellationToken, Task<IPAddress[]>> resolve,
        (long Started, TimeSpan Timeout)? bound, List<string> failures, StrongBox<bool> resolving, CancellationToken cancellationToken)
    {
        IPAddress[] addresses;
        Task<IPAddress[]>? lookup = null;
        try
        {
            lookup = resolve(endpoint.Host, endpoint.AddressFamily, cancellationToken);

            // Waited for with the token, not as it is: the system's lookup does not end when the token is
            // cancelled once it has started (on Linux, getaddrinfo blocks a thread until the resolver
            // answers or gives up, 30 s a try at most against a server that never answers), so neither
            // the caller's cancellation nor the timeout ended a connect waiting for a name.
            addresses = await lookup.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Left to end in its own time; its failure then is nobody's (and no unobserved exception).
            // Whether or not it has ended by now: one that failed as the wait was cancelled was never awaited.
            _ = lookup?.ContinueWith(static done => done.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
        catch (SocketException ex)
        {
            // The resolver's message ("Name or service not known") names no host.
            throw Named(ex, $"The host name '{endpoint.Host}' did not resolve");
        }
        catch (ArgumentException ex)
        {
            // The system's resolver refuses a name it cannot look up (longer than DNS allows) from the call itself:
            // an exception the connect does not document, whose message ("hostName") names no host.
            throw Keeping(ex, new SocketException((int)SocketError.HostNotFound, $"The host name '{endpoint.Host}' did not resolve: {ex.Message}"));
        }

        resolving.Value = false; // answered: a timeout from now on is the addresses'
        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound, $"The host name '{endpoint.Host}' resolved to no address.");
        }

        // Tried one after another, as Socket.ConnectAsync(DnsEndPoint) does; the last failure's error is
        // reported, since it is the one a caller who named a single host can act on, and the message
        // names every address's failure (Socket's names none).
        SocketException? last = null;
        for (int i = 0; i < addresses.Length; i++)
        {
            var address = new IPEndPoint(addresses[i], endpoint.Port);
            int left = addresses.Length - i;
            if (bound is not { } timeout || left == 1)
            {
                try
                {
                    return await ConnectToAddressAsync(address, cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException ex)
                {
                    last = ex;
                    failures.Add(ex.Message);
                    continue;
                }
            }

            TimeSpan share = Share(timeout.Timeout - Stopwatch.GetElapsedTime(timeout.Started), left);
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(share);
            try
            {
                return await ConnectToAddressAsync(address, attempt.Token).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                last = ex;
                failures.Add(ex.Message);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last = new SocketException((int)SocketError.TimedOut, $"Connecting to {address} did not complete within its {share.TotalSeconds:0.###} s");
                failures.Add(last.Message);
            }
        }

        throw Keeping(last!, new SocketException((int)last!.SocketErrorCode,
            $"No address of {endpoint.Host}:{endpoint.Port} accepted ({addresses.Length} tried): {string.Join("; ", failures)}."));
    }

    /// <summary>
    /// How long an address that is not the last may take: what is left of the timeout, shared among the
    /// addresses left, at least <see cref="ShortestShare"/> (and never more than is left). Waited for to
    /// the end, an address that never answers (a black-holed IPv6 route, whose SYNs vanish) took the whole
    /// timeout, and the next, which would have accepted, was never tried.
    /// </summary>
    private static TimeSpan Share(TimeSpan remaining, int addressesLeft)
    {
        if (remaining <= TimeSpan.Zero)
        {
            return TimeSpan.Zero; // the whole timeout is up: the bound token ends the attempt
        }

        TimeSpan share = remaining / addressesLeft;
        return share >= ShortestShare ? share : remaining < ShortestShare ? remaining : ShortestShare;
    }

    /// <summary>
    /// The same socket error, with what failed in front of the system's message: a connect's own
    /// ("Connection refused") names no endpoint, and a host connecting to many servers could not
    /// tell from its log which one refused.
    /// </summary>
    private static SocketException Named(SocketException ex, string what) =>
        Keeping(ex, new SocketException((int)ex.SocketErrorCode, $"{what}: {ex.Message}"));

    /// <summary>
    /// <paramref name="named"/>, not yet thrown, with the stack of <paramref name="cause"/> under its own. A
    /// SocketException takes no inner exception, so a rebuilt one was thrown from our frames alone, with nothing of
    /// the system call that failed (the error code carries over: SocketException maps it back to the OS's).
    /// </summary>
    private static SocketException Keeping(Exception cause, SocketException named) =>
        cause.StackTrace is { } trace ? (SocketException)ExceptionDispatchInfo.SetRemoteStackTrace(named, trace) : named;

    private static async Task<Socket> ConnectToAddressAsync(EndPoint endpoint, CancellationToken cancellationToken)
    {
        bool unix = endpoint is UnixDomainSocketEndPoint;
        Socket? socket = null;
        try
        {
            // Made in here: the system's refusal to make one (an address family the host does not support,
            // as IPv6 on a host with it turned off; no descriptors left) is a failed connect, named as one.
            socket = new Socket(endpoint.AddressFamily, SocketType.Stream, unix ? ProtocolType.Unspecified : ProtocolType.Tcp);
            if (!unix)
            {
                socket.NoDelay = true;
            }

            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch (SocketException ex)
        {
            socket?.Dispose();
            throw Named(ex, $"Connecting to {endpoint} failed");
        }
        catch
        {
            socket?.Dispose();
            throw;
        }
    }
}
