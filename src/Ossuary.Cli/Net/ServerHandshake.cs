using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Net;

/// <summary>
/// The server side of a handshake for <c>listen</c> and <c>receive</c>: a failure is one line on
/// stderr (<see cref="ConnectionFailureLog"/>) that says whose decision it was (ours: the client's key is not allowed, with the key; the
/// client's: it did not trust our key; neither: the peer does not speak Ossuary).
/// </summary>
internal static class ServerHandshake
{
    // How long a failed handshake's socket waits for the client to close its end, as the library's servers wait.
    private static readonly TimeSpan ClientCloseWait = TimeSpan.FromSeconds(5);

    /// <summary>The secured connection, or null (already reported) when the handshake failed.</summary>
    public static async Task<OssuaryDuplexPipe?> AcceptAsync(SocketPipe pipe, ServerSetup setup, ConnectionFailureLog failures, CancellationToken cancellationToken)
    {
        string peer = pipe.RemoteEndPoint?.ToString() ?? "?";
        var refused = new StrongBoxKey();
        OssuaryServerOptions options = setup.ForConnection(refused);
        try
        {
            return await OssuaryDuplexPipe.AcceptAsync(pipe, options, cancellationToken);
        }
        catch (OssuaryException ex)
        {
            failures.Report("ossuary: " + Describe(ex, pipe, peer, refused.Key, setup, options.HandshakeTimeout));

            // A refused client counts itself established and may be sending: closed under its bytes, the socket
            // would reset and could drop our Disconnect (error), the only word of its refusal. Only then: a peer
            // that does not speak Ossuary, or said nothing in time, is owed nothing more.
            if (refused.Key is not null || (ex.Reason == OssuaryErrorReason.InvalidKey && setup.Authenticated))
            {
                await pipe.LingerAfterFailedHandshakeAsync(ClientCloseWait, cancellationToken);
            }

            return null;
        }
    }

    private static string Describe(OssuaryException ex, SocketPipe pipe, string peer, OssuaryPublicKey? refused, ServerSetup setup, TimeSpan timeout)
    {
        if (refused is not null)
        {
            return $"connection from {peer} refused: client key {refused} is not authorized (to admit it: --allow {refused})";
        }

        if (ex.Reason == OssuaryErrorReason.ConnectionFailed)
        {
            return $"connection from {peer} ended the handshake with an error: the client does not trust this server's key " +
                   $"{setup.Identity.PublicKey}, or it failed; this server refused nothing";
        }

        if (PeerDiagnosis.NotOssuary(ex, pipe, $"connection from {peer}", timeout, peerIsServer: false) is { } notOssuary)
        {
            return notOssuary;
        }

        return ex.Reason == OssuaryErrorReason.InvalidKey && setup.Authenticated
            ? $"connection from {peer} refused ({ex.Reason}): {ex.Message} (the client presented no key, or an invalid one)"
            : $"connection from {peer} failed during the handshake ({ex.Reason}): {ex.Message}";
    }
}
