using Ossuary.Pipelines;

namespace Ossuary.Cli.Transfer;

/// <summary>
/// The receiver's own file system failing (a full disk, a file too large for it, no permission):
/// the receiver's fault, not the sender's input, so the sender is told why in its <c>ERR</c> line
/// (without the receiver's paths) and the receiver exits 1.
/// </summary>
internal static class StorageFailure
{
    /// <summary>Writes to the file being received, any refusal of the file system reported as an <see cref="IOException"/>.</summary>
    public static async ValueTask WriteAsync(Stream target, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        try
        {
            await target.WriteAsync(bytes, cancellationToken);
        }
        catch (ArgumentException ex)
        {
            // .NET reports EFBIG (past the file system's largest file, or the process's file size
            // limit) as an argument error, "Specified file length was too large for the file system".
            throw new IOException($"File too large for the file system ({ex.Message})", SystemFailure.FileTooLarge);
        }
    }

    /// <remarks>An <see cref="OssuaryException"/> is an <see cref="IOException"/> too, but the connection's failure (a sender that vanished), not the disk's.</remarks>
    public static bool Is(Exception ex) => ex is (IOException and not OssuaryException) or UnauthorizedAccessException;

    /// <summary>What the sender is told: the kind of failure, not the receiver's paths.</summary>
    public static string ReasonForSender(Exception ex) => ex switch
    {
        UnauthorizedAccessException => "permission denied",
        IOException { HResult: SystemFailure.NoSpace } => "no space left on device",
        IOException quota when quota.HResult == SystemFailure.QuotaExceeded => "disk quota exceeded",
        IOException { HResult: SystemFailure.FileTooLarge } => "file too large",
        IOException { HResult: SystemFailure.ReadOnlyFileSystem } => "read-only file system",
        _ => "an I/O error",
    };
}
