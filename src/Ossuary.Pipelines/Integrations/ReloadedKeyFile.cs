using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The rule for an identity key file named by a configuration reload: it must be a regular file. At start-up
/// a named pipe is read (a secrets manager hands the key over without putting it on disk, and start-up waits
/// for it as for any file); on a reload its open waits, for ever if nobody writes, and the reload with it
/// (the configuration's reload thread, and every change after it). So the pipe is refused before it is
/// opened, and the key in force kept. (The reload reads its files before it takes any lock, so a regular
/// file on a hung mount holds up only the reload itself: see ServerPlanSource.)
/// </summary>
internal static class ReloadedKeyFile
{
    /// <summary>Throws unless <paramref name="path"/> (when set) leads to a regular file, a folder or nothing the system can tell.</summary>
    /// <exception cref="UnauthorizedAccessException">It is a named pipe, a socket or a device; the message names it and says why.</exception>
    public static void Require(string? path)
    {
        if (path is null)
        {
            return;
        }

        try
        {
            RegularFile.Require(path, "secret key");
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new UnauthorizedAccessException(
                $"{ex.Message} A configuration reload reads only a regular file: only start-up waits for a pipe's writer.", ex);
        }

        Checked?.Invoke(path);
    }

    /// <summary>A test's seam: called with the path once its type is checked and before it is opened, to swap the name in between.</summary>
    internal static Action<string>? Checked { get; set; }
}
