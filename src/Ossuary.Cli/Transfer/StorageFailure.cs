using Ossuary.Pipelines;

namespace Ossuary.Cli.Transfer;

/// <summary>
/// The receiver's own file system failing (a full disk, a file too large for it, no permission):
/// the receiver's fault, not the sender's input, so the sender is told why in its <c>ERR</c> line
/// (without the receiver's paths) and the receiver exits 1.
/// </summary>
internal static class StorageFailure
{
    private const int FileTooLarge = 27; // EFBIG
    private const int NoSpace = 28; // ENOSPC
    private const int ReadOnlyFileSystem = 30; // EROFS
    // EDQUOT: 122 on Linux, 69 on macOS and FreeBSD.
    private static readonly int QuotaExceeded = OperatingSystem.IsMacOS() || OperatingSystem.IsMacCatalyst() || OperatingSystem.IsFreeBSD() ? 69 : 122;

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
            throw new IOException($"File too large for the file system ({ex.Message})", FileTooLarge);
        }
    }

    /// <remarks>An <see cref="OssuaryException"/> is an <see cref="IOException"/> too, but the connection's failure (a sender that vanished), not the disk's.</remarks>
    public static bool Is(Exception ex) => ex is (IOException and not OssuaryException) or UnauthorizedAccessException;

    /// <summary>What the sender is told: the kind of failure, not the receiver's paths.</summary>
    public static string ReasonForSender(Exception ex) => ex switch
    {
        UnauthorizedAccessException => "permission denied",
        IOException { HResult: NoSpace } => "no space left on device",
        IOException quota when quota.HResult == QuotaExceeded => "disk quota exceeded",
        IOException { HResult: FileTooLarge } => "file too large",
        IOException { HResult: ReadOnlyFileSystem } => "read-only file system",
        _ => "an I/O error",
    };
}
