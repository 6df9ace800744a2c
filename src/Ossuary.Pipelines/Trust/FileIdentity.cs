using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Whether a name still leads to the file a process opened. A writer locks a trust file after it
/// opens it (flock, which .NET takes without waiting: open, then lock), and meanwhile another writer
/// may delete the file or rename a new one over it (the tool's <c>known-hosts set</c> and
/// <c>remove</c>), then let go: the lock is then taken on a file no folder names, and what is
/// written there is lost though the write succeeds. Linux and macOS compare device and inode
/// (statx, fstat); Windows refuses to delete or rename a file opened without
/// <see cref="FileShare.Delete"/>, and other systems are not checked.
/// </summary>
internal static class FileIdentity
{
    private const int NoSuchFile = 2; // ENOENT
    private const int NotAFolder = 20; // ENOTDIR

    /// <summary>True if <paramref name="path"/> (its links followed) names the file <paramref name="file"/> has open; false if it names another or nothing.</summary>
    /// <exception cref="IOException">The system cannot tell.</exception>
    public static bool StillNamedBy(SafeFileHandle file, string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return true;
        }

        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            int descriptor = (int)file.DangerousGetHandle();
            (ulong Device, ulong Inode)? opened = OperatingSystem.IsMacOS() ? OfDarwin(descriptor, null) : OfLinux(descriptor, null);
            (ulong Device, ulong Inode)? named = OperatingSystem.IsMacOS() ? OfDarwin(-1, path) : OfLinux(-1, path);
            return named is not null && named == opened;
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    /// <summary>Device and inode of the open <paramref name="descriptor"/>, or of <paramref name="path"/> if given (null if nothing has that name).</summary>
    private static unsafe (ulong Device, ulong Inode)? OfLinux(int descriptor, string? path)
    {
        const int CurrentFolder = -100; // AT_FDCWD
        const int EmptyPath = 0x1000; // AT_EMPTY_PATH: the descriptor itself
        const uint InodeField = 0x100; // STATX_INO
        const int InodeOffset = 32; // struct statx: ... stx_mode (u16), pad (u16), stx_ino (u64)
        const int DeviceOffset = 136; // stx_dev_major (u32), stx_dev_minor (u32), after the timestamps and rdev
        byte* buffer = stackalloc byte[256]; // sizeof(struct statx), the same on every architecture
        byte[] name = path is null ? [0] : [.. System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(path)), 0];
        fixed (byte* pathname = name)
        {
            if (LibcStat.statx(path is null ? descriptor : CurrentFolder, pathname, path is null ? EmptyPath : 0, InodeField, buffer) != 0)
            {
                return Failed(path);
            }
        }

        if ((*(uint*)buffer & InodeField) == 0)
        {
            throw new IOException($"cannot tell which file '{path}' is: statx gave no inode");
        }

        return (((ulong)*(uint*)(buffer + DeviceOffset) << 32) | *(uint*)(buffer + DeviceOffset + 4), *(ulong*)(buffer + InodeOffset));
    }

    private static unsafe (ulong Device, ulong Inode)? OfDarwin(int descriptor, string? path)
    {
        const int InodeOffset = 8; // struct stat (64-bit inodes): st_dev (i32), st_mode (u16), st_nlink (u16), st_ino (u64)
        byte* buffer = stackalloc byte[256]; // sizeof(struct stat) is 144
        bool x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64; // x64's plain calls have the old layout, with 32-bit inodes
        int result = path is null
            ? (x64 ? LibcStat.fstat_inode64(descriptor, buffer) : LibcStat.fstat(descriptor, buffer))
            : (x64 ? LibcStat.stat_inode64(Path.GetFullPath(path), buffer) : LibcStat.stat(Path.GetFullPath(path), buffer));
        if (result != 0)
        {
            return Failed(path);
        }

        return ((ulong)*(uint*)buffer, *(ulong*)(buffer + InodeOffset));
    }

    /// <summary>Null for a name that leads nowhere now (deleted, or a folder above it gone); the system's error for anything else.</summary>
    private static (ulong Device, ulong Inode)? Failed(string? path)
    {
        int error = Marshal.GetLastPInvokeError();
        return path is not null && error is NoSuchFile or NotAFolder
            ? null
            : throw new IOException($"cannot tell which file '{path}' is: {Marshal.GetPInvokeErrorMessage(error)}", error);
    }
}
