using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Ossuary.Native;

/// <summary>
/// Loads libsodium (Geralt's "libsodium" imports) by an absolute path: libsodium.so in the folder
/// of the image this code runs from (libossuary.so, or the program that linked libossuary.a),
/// then by the system's rules (RUNPATH, LD_LIBRARY_PATH, the system's folders).
/// </summary>
/// <remarks>
/// The RUNPATH <c>$ORIGIN</c> of libossuary.so is not enough: a program built with
/// <c>-fsanitize=address</c> loads libraries through ASan's <c>dlopen</c> wrapper, so the loader
/// sees the wrapper, not libossuary.so, as the caller and finds nothing in libossuary's folder.
/// The folder comes from the dynamic loader (<see cref="OwnImage"/>). A failure is said once on
/// stderr, with the paths tried: the C API itself can only return NULL.
/// </remarks>
internal static partial class LibsodiumLoader
{
    private const string LibraryName = "libsodium";
    private const string FileName = "libsodium.so";

    /// <summary>EINTR: a signal handler ran before the write had written anything.</summary>
    private const int Interrupted = 4;

    /// <summary>EAGAIN: stderr is non-blocking and has no room now.</summary>
    private const int WouldBlock = 11;

    /// <summary>POLLOUT: poll(2) returns once the descriptor can be written.</summary>
    private const short PollOut = 4;

    private static int _reported;

    /// <summary>Runs when the runtime starts, i.e. at the first call into the library, before any connection exists.</summary>
    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "This assembly is the application: NativeAOT compiles it into libossuary, and the resolver must be in place before Geralt's first import.")]
    internal static void Install()
    {
        NativeLibrary.SetDllImportResolver(typeof(Geralt.SecureRandom).Assembly, Resolve);
        try
        {
            // Initialise libsodium now, so that a library that loads but cannot start (too old
            // a version, say) is reported here, once, rather than as a silent NULL later.
            Span<byte> probe = stackalloc byte[1];
            Geralt.SecureRandom.Fill(probe);
        }
        catch (Exception ex)
        {
            Report($"libossuary: libsodium could not be started ({ex.GetType().Name}: {ex.Message}); ossuary_create_connection() will return NULL.");
        }
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != LibraryName)
        {
            return 0;
        }

        string? folder = OwnImage.Folder();
        string? besideUs = folder is null ? null : Path.Combine(folder, FileName);
        string? firstFailure = null;
        if (besideUs is not null && File.Exists(besideUs))
        {
            try
            {
                return NativeLibrary.Load(besideUs);
            }
            catch (DllNotFoundException ex)
            {
                firstFailure = $"{besideUs}: {ex.Message}";
            }
            catch (BadImageFormatException ex)
            {
                firstFailure = $"{besideUs}: {ex.Message}";
            }
        }

        // Not beside us: the system's rules (this overload does not call back into Resolve).
        if (NativeLibrary.TryLoad(libraryName, assembly, searchPath, out nint handle))
        {
            return handle;
        }

        Report($"libossuary: cannot load libsodium: {firstFailure ?? $"no {besideUs ?? FileName} beside libossuary"}, and none on the library search path. "
            + "Keep libsodium.so beside libossuary.so (or beside the program that links libossuary.a); ossuary_create_connection() returns NULL until then.");
        return 0;
    }

    /// <summary>Writes <paramref name="message"/> to stderr, once per process.</summary>
    /// <remarks>
    /// With write(2) on descriptor 2, not Console: the first use of Console.Error sets up .NET's
    /// terminal handling, which takes SIGINT, SIGQUIT and SIGCONT from the C program (the README's
    /// "Signals" names the four signals the library takes, and these are not among them).
    /// </remarks>
    private static unsafe void Report(string message)
    {
        if (Interlocked.Exchange(ref _reported, 1) == 0)
        {
            byte[] line = Encoding.UTF8.GetBytes(message + "\n");
            fixed (byte* start = line)
            {
                // Said only once, so a write a signal interrupts (EINTR: a handler of the program's
                // without SA_RESTART while stderr is a full pipe) is made again, a short one goes on
                // with the rest, and one that finds a non-blocking stderr full (EAGAIN: the program set
                // O_NONBLOCK on it, a logger is behind) waits for room as a blocking stderr would; any
                // other failure (no stderr) gives up: there is nowhere else to say it.
                for (int written = 0; written < line.Length;)
                {
                    nint result = Write(2, start + written, (nuint)(line.Length - written));
                    int error = result < 0 ? Marshal.GetLastPInvokeError() : 0;
                    if (error == Interrupted)
                    {
                        continue;
                    }

                    if (error == WouldBlock)
                    {
                        var room = new PollDescriptor { Descriptor = 2, Events = PollOut, ReturnedEvents = 0 };
                        if (Poll(&room, 1, -1) >= 0 || Marshal.GetLastPInvokeError() == Interrupted)
                        {
                            continue;
                        }

                        break;
                    }

                    if (result <= 0)
                    {
                        break;
                    }

                    written += (int)result;
                }
            }
        }
    }

    /// <summary>poll(2) of libc, bound directly (the project's DirectPInvoke): waits for room on a non-blocking stderr.</summary>
    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollDescriptor* descriptors, nuint count, int timeout);

    /// <summary>write(2) of libc, bound directly (the project's DirectPInvoke).</summary>
    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(int descriptor, byte* buffer, nuint count);

    /// <summary>struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct PollDescriptor
    {
        public int Descriptor;
        public short Events;
        public short ReturnedEvents;
    }
}
