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

    // The live connections by handle. An OssuaryConnection * is neither an address nor a
    // GCHandle slot (the runtime reuses those) nor a bare count (1, 2, 3... in every process): it
    // is the connection's serial number through a keyed permutation (HandleCipher). A stale copy
    // of a destroyed connection's handle, a made-up value or another process's handle finds
    // nothing here and fails with -1, instead of acting on whichever connection took its number.
    private static readonly ConcurrentDictionary<nint, NativeConnection> Connections = new();
    private static long s_lastSerial;
    private static HandleCipher? s_cipher;

    /// <summary>Registers <paramref name="connection"/> under a handle never used before.</summary>
    private static nint Register(NativeConnection connection)
    {
        // Made at the first registration, not in a static constructor: the key comes from
        // libsodium, and a type whose initialiser failed (libsodium missing at the first call)
        // would fail every export for the rest of the process.
        HandleCipher cipher = LazyInitializer.EnsureInitialized(ref s_cipher, static () => new HandleCipher());
        nint handle;
        do
        {
            // Shifted to look like a heap address (8-byte aligned, below 2^47), as the original's
            // handles do. The serial number that maps to NULL is skipped; past 2^44 creations
            // Encrypt throws and ossuary_create_connection returns NULL, rather than reuse a handle.
            handle = (nint)(cipher.Encrypt((ulong)Interlocked.Increment(ref s_lastSerial)) << 3);
        }
        while (handle == 0);

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
