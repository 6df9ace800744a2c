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
internal static class LibsodiumLoader
{
    private const string LibraryName = "libsodium";
    private const string FileName = "libsodium.so";

    private static int _reported;

    /// <summary>Set once libsodium has answered a call: from then on a failure of the library is no longer its absence.</summary>
    private static volatile bool s_started;

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
            Probe();
        }
        catch (Exception ex)
        {
            Report($"libossuary: libsodium could not be started ({ex.GetType().Name}: {ex.Message}); ossuary_create_connection() will return NULL.");
        }
    }

    /// <summary>
    /// True once libsodium has started; until then it tries again (libsodium.so may have been put
    /// in place since). False means every call fails for the reason said once on stderr, which
    /// <see cref="InternalError"/> then does not repeat for each call.
    /// </summary>
    internal static bool IsStarted()
    {
        if (!s_started)
        {
            try
            {
                Probe();
            }
            catch (Exception)
            {
                // Still absent or unusable, as reported once.
            }
        }

        return s_started;
    }

    private static void Probe()
    {
        Span<byte> probe = stackalloc byte[1];
        Geralt.SecureRandom.Fill(probe);
        s_started = true;
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
    private static void Report(string message)
    {
        if (Interlocked.Exchange(ref _reported, 1) == 0)
        {
            StandardError.WriteLine(Encoding.UTF8.GetBytes(message + "\n"));
        }
    }
}
