using System.Collections.Concurrent;

namespace Ossuary.Native;

/// <summary>
/// The C API (include/ossuary.h). Every export checks its pointers, runs under the connection's
/// lock and catches every exception: a C caller sees -1 (or NULL), never a crash or a managed
/// exception unwinding into C.
/// </summary>
internal static unsafe partial class OssuaryExports
{
    private const int KeySize = 32;

    // The live connections by handle. An OssuaryConnection * is a number handed out once and
    // never again, not an address or a GCHandle slot (the runtime reuses those): a stale or copied
    // pointer to a destroyed connection finds nothing here and fails with -1, instead of acting on
    // whichever connection took its place.
    private static readonly ConcurrentDictionary<nint, NativeConnection> Connections = new();
    private static long s_lastHandle;

    /// <summary>Registers <paramref name="connection"/> under a handle never used before.</summary>
    private static nint Register(NativeConnection connection)
    {
        // 2^63 creations before the counter wraps, and nint is 64-bit on every target we publish.
        nint handle = (nint)Interlocked.Increment(ref s_lastHandle);
        Connections[handle] = connection;
        return handle;
    }

    /// <summary>Takes the connection out of the table: the first destroy gets it, every later one null.</summary>
    private static NativeConnection? Unregister(nint handle) =>
        Connections.TryRemove(handle, out NativeConnection? connection) ? connection : null;

    /// <summary>The live connection behind a handle; null for NULL, a destroyed connection, or a pointer we never handed out.</summary>
    private static NativeConnection? Resolve(nint connection) =>
        connection != 0 && Connections.TryGetValue(connection, out NativeConnection? target) ? target : null;
}
