using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Ossuary.Native;

/// <summary>
/// The C API (include/ossuary.h). Every export checks its pointers, runs under the connection's
/// lock and catches every exception: a C caller sees -1 (or NULL), never a crash or a managed
/// exception unwinding into C, and one it does not expect (a bug) is also said on stderr
/// (<see cref="InternalError"/>).
/// </summary>
/// <remarks>
/// These are the bodies of the C API, compiled as <c>dotnet_ossuary_*</c>. The functions a program
/// calls are C (native/runtime_start.c): they call in here only once the runtime is running or can
/// start, since a runtime that cannot start (no thread for it) aborts the host program, and they
/// count each call in and out of the fork gate (native/fork_gate.c), so that fork() never copies a
/// call half-done into the child.
/// </remarks>
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
        HandleCipher cipher = CipherOfThisProcess();
        nint handle;
        do
        {
            // Shifted to look like a heap address (8-byte aligned, below 2^47), as the original's
            // handles do. The serial number that maps to NULL is skipped, and so is one whose
            // handle a connection inherited from the parent process holds; past 2^44 creations
            // Encrypt throws and ossuary_create_connection returns NULL, rather than reuse a handle.
            handle = (nint)(cipher.Encrypt((ulong)Interlocked.Increment(ref s_lastSerial)) << 3);
        }
        while (handle == 0 || !Connections.TryAdd(handle, connection));

        return handle;
    }

    /// <summary>
    /// The handle key of this process. Made at the first registration, not in a static
    /// constructor: the key comes from libsodium, and a type whose initialiser failed (libsodium
    /// missing at the first call) would fail every export for the rest of the process. A child
    /// made by fork() inherits its parent's key and serial number, and would hand out the very
    /// handles its parent and its siblings hand out next: it draws a key of its own at its first
    /// registration (the connections it inherited keep their handles).
    /// </summary>
    private static HandleCipher CipherOfThisProcess()
    {
        int process = GetProcessId();
        HandleCipher? current = Volatile.Read(ref s_cipher);
        while (current is null || current.Process != process)
        {
            // No lock: in a child made by fork() only the forking thread exists, and a lock some
            // other thread of the parent held at the fork would never be released.
            var fresh = new HandleCipher(process);
            HandleCipher? seen = Interlocked.CompareExchange(ref s_cipher, fresh, current);
            current = ReferenceEquals(seen, current) ? fresh : seen;
        }

        return current;
    }

    /// <summary>getpid(): not Environment.ProcessId, which keeps the first value it read, the parent's in a forked child.</summary>
    [LibraryImport("libc", EntryPoint = "getpid")]
    private static partial int GetProcessId();

    /// <summary>Takes the connection out of the table: the first destroy gets it, every later one null.</summary>
    private static NativeConnection? Unregister(nint handle) =>
        Connections.TryRemove(handle, out NativeConnection? connection) ? connection : null;

    /// <summary>The live connection behind a handle; null for NULL, a destroyed connection, or a pointer we never handed out.</summary>
    private static NativeConnection? Resolve(nint connection) =>
        connection != 0 && Connections.TryGetValue(connection, out NativeConnection? target) ? target : null;
}
