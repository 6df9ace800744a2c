using System.Runtime.InteropServices;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Gives a finished file its final name only if nothing has that name, in one step: link(2) fails
/// if the name exists, where a move without overwrite looks first and then renames over whatever
/// appeared in between. The one implementation for the library's key files and the tool's received
/// files and keys (the tool sees it through InternalsVisibleTo).
/// </summary>
internal static partial class ExclusiveLink
{
    private const int AlreadyExists = 17; // EEXIST, Linux and macOS

    /// <summary>Moves <paramref name="source"/> to <paramref name="destination"/>, which must not exist.</summary>
    /// <exception cref="IOException">The destination exists, or the file system refused the move.</exception>
    public static void Take(string source, string destination)
    {
        if (OperatingSystem.IsWindows())
        {
            File.Move(source, destination, overwrite: false); // MoveFileEx without REPLACE_EXISTING: one step already
            return;
        }

        // Whole paths, whatever the caller's: the same file either way, and the calls a trace shows name it.
        if (Link(Path.GetFullPath(source), Path.GetFullPath(destination)) != 0)
        {
            int error = Marshal.GetLastPInvokeError();
            if (error == AlreadyExists)
            {
                throw new IOException($"'{destination}' already exists.", error);
            }

            // A file system without hard links (FAT, some network and FUSE ones) has only the move
            // that looks first; any other refusal it reports as .NET does.
            File.Move(source, destination, overwrite: false);
            return;
        }

        try
        {
            File.Delete(source);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The file has its name; a second name left beside it is untidy, not a failure.
        }
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string created);
}
