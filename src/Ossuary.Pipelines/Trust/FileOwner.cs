using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Who owns an opened file, and whether that is someone this process may take a key or a trust
/// list from: itself (its effective user) or root, as OpenSSH's StrictModes allows. A file another
/// user owns is theirs to rewrite, or to chmod open, at any moment after its mode was checked. .NET
/// has no owner API, hence libc: statx on Linux (its buffer's layout is the same on every
/// architecture), fstat on macOS. Windows has no Unix owner and is not checked; nor are other
/// systems (FreeBSD), whose <c>struct stat</c> layouts are not known here.
/// </summary>
internal static partial class FileOwner
{
    private const uint Root = 0;

    /// <summary>
    /// Throws unless the opened <paramref name="file"/> is owned by the effective user or root
    /// (never on Windows or systems other than Linux and macOS).
    /// </summary>
    /// <param name="file">The opened file: its owner is checked, not the owner of what the name leads to now.</param>
    /// <param name="path">The file's name, for the message.</param>
    /// <param name="kind">What the file is, for the message ("authorized-keys").</param>
    /// <param name="risk">What its owner could do, for the message ("admit their own key").</param>
    /// <exception cref="UnauthorizedAccessException">Another user owns the file, or its owner cannot be told.</exception>
    public static void Require(SafeFileHandle file, string path, string kind, string risk)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }

        uint self = geteuid();
        uint owner = Of(file, path, kind);
        if (owner != self && owner != Root)
        {
            throw new UnauthorizedAccessException(
                $"{path}: the {kind} file is owned by user {owner}, not by this process's user ({self}) or root, and its owner could {risk}; refusing to use it (fix with: chown {self} {path}).");
        }
    }

    /// <summary>The user id that owns the opened file (Linux and macOS only).</summary>
    /// <exception cref="UnauthorizedAccessException">The system cannot tell: the file is refused, never taken unchecked.</exception>
    internal static uint Of(SafeFileHandle file, string path, string kind)
    {
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            int descriptor = (int)file.DangerousGetHandle();
            return OperatingSystem.IsMacOS() ? OfDarwin(descriptor, path, kind) : OfLinux(descriptor, path, kind);
        }
        catch (EntryPointNotFoundException ex)
        {
            throw Unknown(path, kind, $"the C library lacks {ex.Message}");
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    /// <summary>The effective user id of this process (Linux and macOS only).</summary>
    internal static uint EffectiveUser => geteuid();

    private static unsafe uint OfLinux(int descriptor, string path, string kind)
    {
        const int EmptyPath = 0x1000; // AT_EMPTY_PATH: the descriptor itself, not a name under it
        const uint UidField = 0x8; // STATX_UID
        const int UidOffset = 20; // struct statx: stx_mask (u32), stx_blksize (u32), stx_attributes (u64), stx_nlink (u32), stx_uid (u32)
        byte* buffer = stackalloc byte[256]; // sizeof(struct statx), the same on every architecture
        byte empty = 0;
        if (LibcStat.statx(descriptor, &empty, EmptyPath, UidField, buffer) != 0)
        {
            throw Unknown(path, kind, $"statx failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }

        if ((*(uint*)buffer & UidField) == 0)
        {
            throw Unknown(path, kind, "statx gave no owner");
        }

        return *(uint*)(buffer + UidOffset);
    }

    private static unsafe uint OfDarwin(int descriptor, string path, string kind)
    {
        const int UidOffset = 16; // struct stat (64-bit inodes): st_dev (i32), st_mode (u16), st_nlink (u16), st_ino (u64), st_uid (u32)
        byte* buffer = stackalloc byte[256]; // sizeof(struct stat) is 144
        int result = RuntimeInformation.ProcessArchitecture == Architecture.X64
            ? LibcStat.fstat_inode64(descriptor, buffer) // x64's plain fstat has the old layout, with 32-bit inodes
            : LibcStat.fstat(descriptor, buffer);
        if (result != 0)
        {
            throw Unknown(path, kind, $"fstat failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }

        return *(uint*)(buffer + UidOffset);
    }

    private static UnauthorizedAccessException Unknown(string path, string kind, string why) =>
        new($"{path}: cannot tell who owns the {kind} file ({why}); refusing to use it.");

#pragma warning disable SA1300, IDE1006 // libc's names
    [LibraryImport("libc")]
    private static partial uint geteuid();
#pragma warning restore SA1300, IDE1006
}
