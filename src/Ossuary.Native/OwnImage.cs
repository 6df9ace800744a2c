using System.Globalization;
using System.Runtime.InteropServices;

namespace Ossuary.Native;

/// <summary>
/// Where the image that holds this code lives: libossuary.so, or the program that linked
/// libossuary.a.
/// </summary>
/// <remarks>
/// The dynamic loader knows: <c>dladdr1</c> on an address inside this image gives its link map,
/// whose name is the path the image was loaded by. That is an absolute path whenever the library
/// was found through an absolute RUNPATH, LD_LIBRARY_PATH entry or <c>dlopen</c> path; for the
/// program itself the name is empty (<c>dladdr</c> would say <c>argv[0]</c>, which the caller may
/// have set to anything), so the program's path comes from the kernel. Only a library loaded by a
/// relative path (the process may have changed directory since) makes us read /proc/self/maps,
/// which cost about a tenth of the first call, so not on the usual path.
/// </remarks>
internal static unsafe partial class OwnImage
{
    private const int RtldDlLinkMap = 2;

    /// <summary>The folder of this image, or null when it cannot be told.</summary>
    internal static string? Folder()
    {
        string? path = FilePath();
        return path is null ? null : Path.GetDirectoryName(path);
    }

    /// <summary>The absolute path of this image, or null when it cannot be told.</summary>
    internal static string? FilePath()
    {
        void* address = (delegate* unmanaged<void>)&Anchor;
        DlInfo info;
        LinkMap* map = null;
        if (DlAddr1(address, &info, &map, RtldDlLinkMap) == 0 || map == null || map->Name == null)
        {
            return FromMaps((ulong)address);
        }

        string name = Marshal.PtrToStringUTF8((nint)map->Name) ?? string.Empty;
        if (name.Length == 0)
        {
            return Environment.ProcessPath; // the program itself: this code was linked in statically
        }

        return name[0] == '/' ? name : FromMaps((ulong)address);
    }

    /// <summary>The path of the mapping that holds <paramref name="address"/>, from /proc/self/maps.</summary>
    private static string? FromMaps(ulong address)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                // start-end perms offset dev inode [path]
                int dash = line.IndexOf('-', StringComparison.Ordinal);
                int space = line.IndexOf(' ', StringComparison.Ordinal);
                int slash = line.IndexOf('/', StringComparison.Ordinal);
                if (dash <= 0 || space <= dash || slash < 0
                    || !ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong start)
                    || !ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong end))
                {
                    continue;
                }

                if (address >= start && address < end)
                {
                    string path = line[slash..];
                    return path.EndsWith(" (deleted)", StringComparison.Ordinal) ? null : path;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    // glibc 2.34+ has dladdr1 in libc itself (the NativeAOT runtime already imports dladdr from
    // there); the project file binds this import directly, so no library lookup happens for it.
    [LibraryImport("libc", EntryPoint = "dladdr1")]
    private static partial int DlAddr1(void* address, DlInfo* info, LinkMap** extra, int flags);

    /// <summary>A function whose native address lies inside this image; never called.</summary>
    [UnmanagedCallersOnly]
    private static void Anchor()
    {
    }

    /// <summary>Dl_info of &lt;dlfcn.h&gt;.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct DlInfo
    {
        public byte* FileName;
        public void* FileBase;
        public byte* SymbolName;
        public void* SymbolAddress;
    }

    /// <summary>The public head of struct link_map of &lt;link.h&gt;.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct LinkMap
    {
        public nuint Address;
        public byte* Name;
    }
}
