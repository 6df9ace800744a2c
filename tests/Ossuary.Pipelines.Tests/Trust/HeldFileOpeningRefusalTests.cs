using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Trust;

/// <summary>
/// The open of a known-hosts file to write it (<see cref="OssuaryKnownHosts.Add"/>, the tool's <c>set</c>
/// and <c>remove</c>) waits while another writer holds it, up to <see cref="OssuaryKnownHosts.LockWait"/>.
/// It waited so on any <see cref="IOException"/> but a missing file, though no wait ends a loop of links, a
/// read-only file system or a full disk: each was tried again for 10 s, and then said what the system had
/// said at once. A single attempt shows it: such a refusal is thrown by the first. (A folder in place of the
/// file, a file in place of its folder and no permission come as other exceptions, never waited on.)
/// </summary>
public sealed class HeldFileOpeningRefusalTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-held-open-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("a loop of links", typeof(IOException), "Too many levels of symbolic links")]
    [InlineData("a folder in place of the file", typeof(UnauthorizedAccessException), "Access to the path")]
    [InlineData("a file in place of its folder", typeof(DirectoryNotFoundException), "Could not find a part of the path")]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void ARefusalNoWaitEndsIsThrownByTheFirstAttemptWithTheSystemsReason(string what, Type thrown, string reason)
    {
        string path = Path.Combine(_folder, "known_hosts");
        switch (what)
        {
            case "a folder in place of the file":
                Directory.CreateDirectory(path);
                break;
            case "a file in place of its folder":
                File.WriteAllText(path, "");
                path = Path.Combine(path, "known_hosts");
                break;
            default:
                MakeLoop(path);
                break;
        }

        var opening = new HeldFileOpening(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        FileStream? opened = null;
        Exception? refused = Record.Exception(() => opened = opening.TryOpen(out _));

        opened?.Dispose();
        Assert.NotNull(refused); // not null (try again): no wait ends it
        Assert.IsType(thrown, refused);
        Assert.Contains(reason, refused.Message, StringComparison.Ordinal);
        Assert.False(opening.Held);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AnAddThroughALoopOfLinksFailsWithTheSystemsReason()
    {
        string path = Path.Combine(_folder, "known_hosts");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path); // no file yet
        MakeLoop(path);
        using var key = OssuaryIdentity.Generate();

        IOException refused = Assert.ThrowsAny<IOException>(() => hosts.Add("example.org", 7000, key.PublicKey));

        Assert.Contains("Too many levels of symbolic links", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("locked", refused.Message, StringComparison.Ordinal);
    }

    private void MakeLoop(string path)
    {
        string other = Path.Combine(_folder, "other");
        File.CreateSymbolicLink(path, other);
        File.CreateSymbolicLink(other, path);
    }
}
