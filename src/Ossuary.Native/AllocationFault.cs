using System.Diagnostics;

namespace Ossuary.Native;

/// <summary>
/// Test seam: makes a chosen step of a <see cref="NativeConnection"/> call throw
/// <see cref="OutOfMemoryException"/>, as a full heap makes it throw there. A full heap for real
/// (tests/native/heap_full.c) fails the first allocation of a call, which is the export's own key or
/// identity, so it never reaches the later steps whose order decides what a failed call leaves behind.
/// </summary>
/// <remarks>
/// Every call compiles away outside the test project, the one build that defines OSSUARY_FAULTS (it
/// links the connection's sources): libossuary carries no trace of it. Armed per thread, so tests
/// running side by side never fail each other's calls.
/// </remarks>
internal static class AllocationFault
{
    /// <summary>A fresh session (<c>ossuary_set_secret_key</c>).</summary>
    public const string Session = "session";

    /// <summary>Room in the session for keys to trust (<c>ossuary_add_authorized_key(s)</c>).</summary>
    public const string Trust = "trust";

    /// <summary>The next handshake packet written into the output queue (<c>ossuary_send_handshake</c>).</summary>
    public const string HandshakePacket = "handshake packet";

    [ThreadStatic]
    private static string? t_step;

    [ThreadStatic]
    private static int t_passes;

    [ThreadStatic]
    private static Exception? t_instead;

    /// <summary>
    /// The step <paramref name="step"/> fails on this thread once it has been passed <paramref name="passes"/> times,
    /// with <paramref name="instead"/> when given: a failure that is not for want of memory, as a bug would throw.
    /// </summary>
    [Conditional("OSSUARY_FAULTS")]
    public static void Arm(string step, int passes = 0, Exception? instead = null)
    {
        t_step = step;
        t_passes = passes;
        t_instead = instead;
    }

    /// <summary>Nothing fails any more on this thread (an armed step the call never reached included).</summary>
    [Conditional("OSSUARY_FAULTS")]
    public static void Disarm() => t_step = null;

    /// <summary>Throws if this thread armed <paramref name="step"/> and its passes are used up; then disarms.</summary>
    [Conditional("OSSUARY_FAULTS")]
    public static void At(string step)
    {
        if (t_step != step)
        {
            return;
        }

        if (t_passes-- > 0)
        {
            return;
        }

        t_step = null;
        if (t_instead is { } instead)
        {
            throw instead;
        }

#pragma warning disable CA2201 // Reserved for the runtime: thrown here to stand in for the runtime's own, which the exports catch.
        throw new OutOfMemoryException($"Injected at the step '{step}'.");
#pragma warning restore CA2201
    }
}
