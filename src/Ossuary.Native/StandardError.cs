using System.Runtime.InteropServices;

namespace Ossuary.Native;

/// <summary>Writes the library's reasons to descriptor 2: the only channel the C API has besides its return values.</summary>
/// <remarks>
/// Through the C entry points' own writer (native/runtime_start.c, <c>libossuary_write_stderr</c>),
/// which says the runtime's and the fork gate's reasons: one writer of stderr, with its handling of
/// a signal's interruption and of a non-blocking stderr, for both sides. Bound at link time (the
/// project's DirectPInvoke), so nothing is looked up at run time.
/// </remarks>
internal static unsafe partial class StandardError
{
    /// <summary>Writes <paramref name="line"/> (its newline included) whole, or as much as stderr takes.</summary>
    public static void WriteLine(ReadOnlySpan<byte> line)
    {
        fixed (byte* start = line)
        {
            Write(start, (nuint)line.Length);
        }
    }

    [LibraryImport("libossuary_native", EntryPoint = "libossuary_write_stderr")]
    private static partial void Write(byte* line, nuint length);
}
