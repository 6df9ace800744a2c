using System.Security.Cryptography;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Gives a known-hosts file new content by writing it to a new file beside the old one (with the old
/// one's mode), flushing it to disk, renaming it over the old one and flushing the folder: a reader sees
/// the old file or the new one, whole, and so needs no lock, and a crash at any point leaves one or the
/// other. Readers took a shared advisory lock to keep out of a writer's way, and any user who could open
/// the file could hold an exclusive one and stall every check (<see cref="UnlockedOpen"/>).
/// </summary>
/// <remarks>
/// The caller holds the old file (its lock) until this returns: other writers wait for it, and then find
/// that the name leads to another file (<see cref="HeldFileOpening"/>) and take that one. The draft is
/// named FILE.xxxxxxxx.tmp, as the tool's <c>known-hosts set</c> names its own, so that the tool clears
/// what a writer killed before its rename left. Through a link, the link's target is replaced, not the link.
/// </remarks>
internal static class WholeFileReplacement
{
    /// <summary>The random part of a draft's name (FILE.xxxxxxxx.tmp), in bytes: twice as many hex digits.</summary>
    internal const int DraftTagBytes = 4;

    /// <summary>Makes <paramref name="content"/> the content of <paramref name="held"/>, the file <paramref name="path"/> names.</summary>
    /// <exception cref="IOException">The draft cannot be written (a full disk) or renamed, or the folder cannot be flushed; the file is then as it was, except after a failed flush, when it holds the new content.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder cannot be written: a file replaced whole needs a new one beside it.</exception>
    public static void Replace(FileStream held, string path, ReadOnlySpan<byte> content)
    {
        string folder = Rename(held, path, content);

        // The new name must survive a crash too, or a host trusted on first use is met as unknown again
        // (and an impostor's key recorded then).
        DirectorySync.Sync(folder);
    }

    /// <summary>
    /// <see cref="Replace"/> but for flushing the folder, which the caller does (<see cref="DirectorySync"/>),
    /// to tell a file left unchanged from a change a crash could still undo: the tool says which.
    /// </summary>
    /// <returns>The folder to flush: the link target's, through a link.</returns>
    /// <exception cref="IOException">The draft cannot be written (a full disk) or renamed; the file is as it was.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder cannot be written; the file is as it was.</exception>
    public static string Rename(FileStream held, string path, ReadOnlySpan<byte> content)
    {
        string target = TargetOf(path);
        string folder = Path.GetDirectoryName(target)!;
        string draft = target + "." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(DraftTagBytes)) + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 0 };
        if (!OperatingSystem.IsWindows())
        {
            // Owner-only until it has the held file's mode: never a moment when others may open it to write.
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using (var writer = new FileStream(draft, options))
            {
                if (!OperatingSystem.IsWindows())
                {
                    // The held file's mode, not the umask's: a known-hosts file others may write is refused.
                    File.SetUnixFileMode(writer.SafeFileHandle, File.GetUnixFileMode(held.SafeFileHandle));
                }

                writer.Write(content);
                writer.Flush(flushToDisk: true);
            }

            File.Move(draft, target, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(draft);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // Left for the tool's next set or remove to clear; the failure that matters is the one thrown.
            }

            if (ex is UnauthorizedAccessException)
            {
                throw new UnauthorizedAccessException(
                    $"{path}: cannot write the new known-hosts file beside it in {folder} ({ex.Message}); the file is replaced whole, so its folder must be writable.", ex);
            }

            throw;
        }

        return folder;
    }

    /// <summary>The file a replacement replaces: a link's final target, not the link.</summary>
    public static string TargetOf(string path) =>
        new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
}
