using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Opens the client's socket to an <see cref="IPEndPoint"/>, a <see cref="DnsEndPoint"/> (every
/// resolved address in the resolver's order, IPv6 and IPv4 alike, as
/// <c>Socket.ConnectAsync(DnsEndPoint)</c> does) or a <see cref="UnixDomainSocketEndPoint"/>, within a timeout.
/// </summary>
internal static class SocketConnector
{
    // The longest delay CancelAfter accepts (about 49.7 days); the options take any positive
    // timeout, and one longer than this is as good as none for a connect.
    private static readonly TimeSpan LongestTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

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

        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout != Timeout.InfiniteTimeSpan && timeout < LongestTimeout)
        {
            bound.CancelAfter(timeout);
        }

        try
        {
            return endpoint switch
            {
                DnsEndPoint name => await ConnectToNameAsync(name, resolve, bound.Token).ConfigureAwait(false),
                _ => await ConnectToAddressAsync(endpoint, bound.Token).ConfigureAwait(false),
            };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new SocketException((int)SocketError.TimedOut, $"Connecting to {endpoint} did not complete within {timeout.TotalSeconds:0.###} s.");
        }
        catch (OperationCanceledException ex) when (ex.CancellationToken != cancellationToken)
        {
            // The caller's token was cancelled; the exception named the linked one, which the caller cannot recognise.
            throw new OperationCanceledException(ex.Message, ex, cancellationToken);
        }
    }

    private static async Task<Socket> ConnectToNameAsync(DnsEndPoint endpoint, Func<string, AddressFamily, CancellationToken, Task<IPAddress[]>> resolve, CancellationToken cancellationToken)
    {
        IPAddress[] addresses;
        try
        {
            addresses = await resolve(endpoint.Host, endpoint.AddressFamily, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            // The resolver's message ("Name or service not known") names no host.
            throw Named(ex, $"The host name '{endpoint.Host}' did not resolve");
        }

        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound, $"The host name '{endpoint.Host}' resolved to no address.");
        }

        // Tried one after another, as Socket.ConnectAsync(DnsEndPoint) does; the last failure is
        // reported, since it is the one a caller who named a single host can act on.
        SocketException? last = null;
        foreach (IPAddress address in addresses)
        {
            try
            {
                return await ConnectToAddressAsync(new IPEndPoint(address, endpoint.Port), cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                last = ex;
            }
        }

        throw Named(last!, $"No address of {endpoint.Host}:{endpoint.Port} accepted ({addresses.Length} tried); the last");
    }

    /// <summary>
    /// The same socket error, with what failed in front of the system's message: a connect's own
    /// ("Connection refused") names no endpoint, and a host connecting to many servers could not
    /// tell from its log which one refused.
    /// </summary>
    private static SocketException Named(SocketException ex, string what) =>
        new((int)ex.SocketErrorCode, $"{what}: {ex.Message}");

    private static async Task<Socket> ConnectToAddressAsync(EndPoint endpoint, CancellationToken cancellationToken)
    {
        bool unix = endpoint is UnixDomainSocketEndPoint;
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, unix ? ProtocolType.Unspecified : ProtocolType.Tcp);
        try
        {
            if (!unix)
            {
                socket.NoDelay = true;
            }

            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw Named(ex, $"Connecting to {endpoint} failed");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
