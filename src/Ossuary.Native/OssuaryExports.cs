using System.Runtime.InteropServices;

namespace Ossuary.Native;

/// <summary>
/// The C API (include/ossuary.h). Every export checks its pointers, runs under the connection's
/// lock and catches every exception: a C caller sees -1 (or NULL), never a crash or a managed
/// exception unwinding into C.
/// </summary>
internal static unsafe partial class OssuaryExports
{
    private const int KeySize = 32;

    /// <summary>The object behind a connection pointer, or null for NULL.</summary>
    private static NativeConnection? Resolve(nint connection) =>
        connection == 0 ? null : GCHandle.FromIntPtr(connection).Target as NativeConnection;
}
