using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Net;

/// <summary>
/// The bytes of stdin a netcat session handed to the connection that never left this process. The
/// end of stdin only says that every byte was written to the connection's output; a peer that
/// stopped reading, then closed (or whose socket reset), leaves the last of them queued here, never
/// sealed nor written to the socket, and the session still ends as the peer's clean close.
/// </summary>
internal static class UnsentStdin
{
    /// <summary>Bytes written to <paramref name="secure"/>'s output and never sent; read once it is disposed, when nothing moves any more.</summary>
    public static long Count(OssuaryDuplexPipe secure) => secure.PlaintextWritten - secure.PlaintextSent;

    /// <summary>The reason for a session that ended with <paramref name="unsent"/> bytes of stdin still here.</summary>
    public static string Describe(long unsent, string peer) =>
        $"the last {unsent} bytes of stdin were not sent: {peer} closed the connection or stopped reading before it took them";
}
