namespace Ossuary.Native;

/// <summary>What a thread that calls the C API needs of the runtime before the call's work begins.</summary>
/// <remarks>
/// The fork gate that counts each call in and out is C (native/fork_gate.c), in the entry points
/// of native/runtime_start.c: its handlers run on threads that never called in, and in the child.
/// </remarks>
internal static class CallingThread
{
    /// <summary>
    /// Makes this thread's managed thread id, if it has none yet: an object on the heap, which the
    /// first lock the thread takes (the connection's, the session's) would otherwise make. Made in
    /// every call, not only in one that locks, so that the call ossuary.h asks a thread to make while
    /// there is room (ossuary_generate_auth_keypair(NULL, 0, NULL, 0), which takes no lock) makes all the thread needs:
    /// with only the thread's storage made, that thread's next call met the full heap at its lock
    /// and returned -1.
    /// </summary>
    public static void MakeManagedId()
    {
        try
        {
            // A read of a thread static once the id exists.
            _ = Environment.CurrentManagedThreadId;
        }
        catch (OutOfMemoryException)
        {
            // Outside the export's try: the call goes on, and its lock, which needs the id, fails it with -1.
        }
    }
}
