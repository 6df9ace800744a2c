using System.Runtime.InteropServices;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// libc's file status calls, which <see cref="FileOwner"/> and <see cref="FileIdentity"/> read
/// (.NET has no API for a file's owner or inode): statx on Linux, whose buffer's layout is the same
/// on every architecture; stat and fstat on macOS, whose x64 plain calls have the old layout with
/// 32-bit inodes, hence the <c>$INODE64</c> entry points there.
/// </summary>
internal static partial class LibcStat
{
#pragma warning disable SA1300, IDE1006 // libc's names
    [LibraryImport("libc", SetLastError = true)]
    internal static unsafe partial int statx(int dirfd, byte* pathname, int flags, uint mask, byte* statxbuf);

    [LibraryImport("libc", SetLastError = true)]
    internal static unsafe partial int fstat(int fd, byte* buf);

    [LibraryImport("libc", EntryPoint = "fstat$INODE64", SetLastError = true)]
    internal static unsafe partial int fstat_inode64(int fd, byte* buf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int stat(string path, byte* buf);

    [LibraryImport("libc", EntryPoint = "stat$INODE64", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int stat_inode64(string path, byte* buf);
#pragma warning restore SA1300, IDE1006
}
