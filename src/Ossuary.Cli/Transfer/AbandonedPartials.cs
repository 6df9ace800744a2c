using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli.Transfer;

/// <summary>
/// The partial files that receives which never cleaned up (killed with SIGKILL, crashed, cut off by
/// a power failure) left behind. A receive holds its partial file locked for as long as it writes it
/// (flock on Unix, a file opened without sharing on Windows), and the system lets go of the lock when
/// the process ends, however it ends: a partial file of the same name that nobody holds is
/// abandoned, and the next receive of that name into that folder removes it. Never resumed or
/// appended to: no SHA-256 ever covered its bytes, and the next sender may send another file.
/// </summary>
internal static partial class AbandonedPartials
{
    private const int Exclusive = 2; // LOCK_EX, Linux and macOS
    private const int NonBlocking = 4; // LOCK_NB
    private const int RandomHexLength = 12; // the 6 random bytes of the name
    private const int SharingViolation = 32; // ERROR_SHARING_VIOLATION: a live receive has it open on Windows

    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>
    /// Locks the receive's own partial file, so that no other receive takes it for abandoned. Taken
    /// here rather than left to .NET's lock of a file opened with <see cref="FileShare.None"/>, which
    /// DOTNET_SYSTEM_IO_DISABLEFILELOCKING turns off. The name is checked again after the lock: a
    /// receive that looked between our create and our lock may have removed it. A file system that
    /// refuses locks (an NFS mount without its lock service: ENOLCK) leaves the file unlocked, as .NET
    /// does: there another receive's lock fails the same way, and it removes nothing.
    /// </summary>
    /// <exception cref="IOException">Another receive holds the file, or it no longer has its name.</exception>
    public static void Hold(SafeFileHandle file, string partial)
    {
        if (OperatingSystem.IsWindows())
        {
            return; // opened without sharing: nobody else opens or deletes it
        }

        if (Flock(file, Exclusive | NonBlocking) != 0 && Marshal.GetLastPInvokeError() == NativeStdio.WouldBlock)
        {
            throw new IOException($"the partial file {partial} is locked by another receive of the same name, which took it for abandoned", NativeStdio.WouldBlock);
        }

        if (!FileIdentity.StillNamedBy(file, partial))
        {
            throw new IOException($"the partial file {partial} was removed as it was made (another receive of the same name took it for abandoned)");
        }
    }

    /// <summary>Removes the abandoned partial files of <paramref name="stem"/> in <paramref name="directory"/>; returns what it said about them.</summary>
    public static IReadOnlyList<string> Remove(string directory, string stem, string name)
    {
        var said = new List<string>();
        IEnumerable<string> candidates;
        try
        {
            // Listed whole, matched here: the stem may hold '*' or '?', which a search pattern reads as wildcards.
            candidates = Directory.EnumerateFiles(directory, "*.part").Where(path => IsPartialOf(Path.GetFileName(path), stem)).ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return said; // the receive's own create reports a folder it cannot use
        }

        foreach (string partial in candidates)
        {
            if (TryRemove(partial, out string? failure))
            {
                said.Add($"removed {Path.GetFileName(partial)}, the partial file of a receive of '{TransferProtocol.Printable(name)}' that ended without cleaning up (killed or crashed)");
            }
            else if (failure is not null)
            {
                said.Add($"could not remove {Path.GetFileName(partial)}, the partial file of a receive that ended without cleaning up: {failure}");
            }
        }

        return said;
    }

    /// <summary>A name the receive of <paramref name="stem"/> makes: <c>.STEM.HEX12.part</c>.</summary>
    private static bool IsPartialOf(string fileName, string stem)
    {
        string prefix = $".{stem}.";
        const string Suffix = ".part";
        return fileName.Length == prefix.Length + RandomHexLength + Suffix.Length
            && fileName.StartsWith(prefix, StringComparison.Ordinal)
            && fileName.EndsWith(Suffix, StringComparison.Ordinal)
            && fileName.AsSpan(prefix.Length, RandomHexLength).ContainsAnyExcept(LowerHex) is false;
    }

    /// <summary>True if it was abandoned and is gone; false with no failure if a receive holds it (or it is no partial file of ours).</summary>
    private static bool TryRemove(string partial, out string? failure)
    {
        failure = null;
        try
        {
            if (OperatingSystem.IsWindows())
            {
                // A live receive opened it without sharing, and Windows refuses to delete it.
                File.Delete(partial);
                return true;
            }

            if (new FileInfo(partial).LinkTarget is not null)
            {
                return false; // we never make a link: not ours
            }

            // Opened without waiting (a named pipe swapped in is refused, not waited on), and without a lock of .NET's.
            using FileStream opened = UnlockedOpen.Read(partial, "partial", bufferSize: 0);
            if (!FileIdentity.StillNamedBy(opened.SafeFileHandle, partial) || Flock(opened.SafeFileHandle, Exclusive | NonBlocking) != 0)
            {
                return false; // replaced meanwhile, or a live receive holds it
            }

            File.Delete(partial);
            return true;
        }
        catch (FileNotFoundException)
        {
            return false; // its receive finished or removed it meanwhile
        }
        catch (IOException ex) when (OperatingSystem.IsWindows() && (ex.HResult & 0xFFFF) == SharingViolation)
        {
            return false; // a live receive holds it
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            failure = ex.Message;
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(SafeFileHandle file, int operation);
}
