using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Net;

/// <summary>A client connection of <c>connect</c> and <c>send</c>: the socket and the Ossuary session over it.</summary>
internal sealed class SecureClient : IAsyncDisposable
{
    private SecureClient(SocketPipe socket, OssuaryDuplexPipe secure)
    {
        Socket = socket;
        Secure = secure;
    }

    public SocketPipe Socket { get; }

    public OssuaryDuplexPipe Secure { get; }

    /// <summary>
    /// Connects and handshakes, within <paramref name="timeout"/> if given (nc's <c>-w</c>); a peer
    /// that does not speak Ossuary is reported as such.
    /// </summary>
    public static async Task<SecureClient> ConnectAsync(HostPort server, OssuaryClientOptions options, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout is { } limit)
        {
            bound.CancelAfter(limit);
            if (limit < options.HandshakeTimeout)
            {
                options.HandshakeTimeout = limit;
            }
        }

        SocketPipe? socket = null;
        try
        {
            socket = await SocketPipe.ConnectAsync(server, bound.Token);
            OssuaryDuplexPipe secure = await OssuaryDuplexPipe.ConnectAsync(socket, options, bound.Token);
            return new SecureClient(socket, secure);
        }
        catch (OssuaryException ex) when (socket is not null && PeerDiagnosis.NotOssuary(ex, socket, server.ToString(), options.HandshakeTimeout, peerIsServer: true) is { } message)
        {
            await socket.DisposeAsync();
            throw new CliException(message, ExitCodes.Failure);
        }
        catch (OperationCanceledException) when (bound.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            if (socket is not null)
            {
                await socket.DisposeAsync();
            }

            throw new CliException(socket is null
                ? $"cannot connect to {server}: no answer within {CliOptions.Describe(timeout)} (--timeout)"
                : $"{server} accepted the connection but did not complete the Ossuary handshake within {CliOptions.Describe(timeout)} (--timeout)",
                ExitCodes.Network);
        }
        catch
        {
            if (socket is not null)
            {
                await socket.DisposeAsync();
            }

            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Secure.DisposeAsync();
        await Socket.DisposeAsync();
    }
}
