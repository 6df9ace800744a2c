using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Trust files must be regular files. Opening a named pipe (FIFO) for reading waits until something
/// opens it for writing: an authorized-keys or known-hosts file that was one hung a server's or a
/// client's start-up without a word, and a followed authorized-keys file could give its keys only once.
/// Linux and macOS are checked (statx, stat), links followed; a folder is left to the callers, whose
/// message names it as one, and so is a name that leads nowhere.
/// </summary>
/// <remarks>
/// The check of the name comes before the open (a device may act on an open), and the file opened is
/// checked again (<see cref="RequireOpened"/>) by a caller that opens it without waiting for a writer
/// (O_NONBLOCK), so a name swapped for a pipe in between is refused rather than waited on: whoever
/// could swap it in (anyone who may write the folder, /tmp's sticky bit aside) held a server's start-up,
/// or its authorized-keys watcher and every revocation after it, for as long as nobody wrote.
/// </remarks>
internal static class RegularFile
{
    private const int TypeMask = 0xF000; // S_IFMT
    private const int Regular = 0x8000; // S_IFREG
    private const int Folder = 0x4000; // S_IFDIR
    private const int NamedPipe = 0x1000; // S_IFIFO

    /// <summary>Throws if <paramref name="path"/> leads to a named pipe (unless <paramref name="pipeAllowed"/>), a socket or a device.</summary>
    /// <param name="path">The trust file.</param>
    /// <param name="kind">What the file is, for the message ("authorized-keys").</param>
    /// <param name="pipeAllowed">
    /// A secret key file is read once, and a pipe is a way to hand one over that never puts it on disk
    /// (a secrets manager writing into a FIFO): the caller waits for its writer as it would read a file.
    /// </param>
    /// <exception cref="UnauthorizedAccessException">It is no regular file; the message names it and says what it is.</exception>
    public static void Require(string path, string kind, bool pipeAllowed = false)
    {
        int? type = OperatingSystem.IsLinux() ? TypeOnLinux(path) : OperatingSystem.IsMacOS() ? TypeOnDarwin(path) : null;
        if (type is null or Regular or Folder || (pipeAllowed && type == NamedPipe))
        {
            return;
        }

        throw NotRegular(path, kind, type.Value);
    }

    /// <summary>
    /// Throws if the opened <paramref name="file"/> is a named pipe, a socket or a device: the file opened, not
    /// what the name led to when <see cref="Require"/> looked. Linux and macOS are checked.
    /// </summary>
    /// <returns>Whether it is a folder, left to the caller as <see cref="Require"/> leaves it.</returns>
    /// <exception cref="UnauthorizedAccessException">It is no regular file; the message names it and says what it is.</exception>
    public static bool RequireOpened(SafeFileHandle file, string path, string kind)
    {
        int? type = null;
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            int descriptor = (int)file.DangerousGetHandle();
            type = OperatingSystem.IsLinux() ? TypeOnLinux(descriptor) : OperatingSystem.IsMacOS() ? TypeOnDarwin(descriptor) : null;
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }

        return type is null or Regular or Folder ? type == Folder : throw NotRegular(path, kind, type.Value);
    }

    private static UnauthorizedAccessException NotRegular(string path, string kind, int type)
    {
        string what = type switch
        {
            NamedPipe => "a named pipe (FIFO), which would be read only once something writes to it",
            0xC000 => "a socket",
            0x2000 or 0x6000 => "a device",
            _ => "a special file",
        };
        return new UnauthorizedAccessException($"{path}: the {kind} file is {what}, not a regular file; name a regular file.");
    }

    /// <summary>The file type bits of the opened file <paramref name="descriptor"/>, or null if the system cannot tell.</summary>
    private static unsafe int? TypeOnLinux(int descriptor)
    {
        const int EmptyPath = 0x1000; // AT_EMPTY_PATH: the descriptor itself, not a name under it
        const uint TypeField = 0x1; // STATX_TYPE
        const int ModeOffset = 28; // as in TypeOnLinux(string)
        byte* buffer = stackalloc byte[256]; // sizeof(struct statx)
        byte empty = 0;
        if (LibcStat.statx(descriptor, &empty, EmptyPath, TypeField, buffer) != 0 || (*(uint*)buffer & TypeField) == 0)
        {
            return null;
        }

        return *(ushort*)(buffer + ModeOffset) & TypeMask;
    }

    private static unsafe int? TypeOnDarwin(int descriptor)
    {
        const int ModeOffset = 4; // struct stat: st_dev (i32), st_mode (u16)
        byte* buffer = stackalloc byte[256]; // sizeof(struct stat) is 144
        bool x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64; // x64's plain call has the old layout, st_mode elsewhere
        int result = x64 ? LibcStat.fstat_inode64(descriptor, buffer) : LibcStat.fstat(descriptor, buffer);
        return result != 0 ? null : *(ushort*)(buffer + ModeOffset) & TypeMask;
    }

    /// <summary>The file type bits of the file <paramref name="path"/> leads to, or null if the system cannot tell (no such file, say).</summary>
    private static unsafe int? TypeOnLinux(string path)
    {
        const int CurrentFolder = -100; // AT_FDCWD
        const uint TypeField = 0x1; // STATX_TYPE
        const int ModeOffset = 28; // struct statx: stx_mask, stx_blksize (u32), stx_attributes (u64), stx_nlink, stx_uid, stx_gid (u32), stx_mode (u16)
        byte* buffer = stackalloc byte[256]; // sizeof(struct statx)
        byte[] name = [.. System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(path)), 0];
        fixed (byte* pathname = name)
        {
            if (LibcStat.statx(CurrentFolder, pathname, 0, TypeField, buffer) != 0 || (*(uint*)buffer & TypeField) == 0)
            {
                return null;
            }
        }

        return *(ushort*)(buffer + ModeOffset) & TypeMask;
    }

    private static unsafe int? TypeOnDarwin(string path)
    {
        const int ModeOffset = 4; // struct stat: st_dev (i32), st_mode (u16)
        byte* buffer = stackalloc byte[256]; // sizeof(struct stat) is 144
        bool x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64; // x64's plain call has the old layout, st_mode elsewhere
        int result = x64 ? LibcStat.stat_inode64(Path.GetFullPath(path), buffer) : LibcStat.stat(Path.GetFullPath(path), buffer);
        return result != 0 ? null : *(ushort*)(buffer + ModeOffset) & TypeMask;
    }
}
