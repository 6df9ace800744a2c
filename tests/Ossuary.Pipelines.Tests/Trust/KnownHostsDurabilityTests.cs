using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Trust;

/// <summary>A host recorded in a known-hosts file must survive a crash once Add returns.</summary>
public sealed class KnownHostsDurabilityTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-known-hosts-durable-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task TheFirstHostRecordedInANewFileIsSyncedWithTheFilesNameBeforeAddReturns()
    {
        // Add synced the line it wrote but not the folder of a file it had just created: a crash soon
        // after (trust on first use, then the connection's data) could leave no file, and the next
        // connection would meet the server as unknown and record whatever key it is shown then. Add now
        // writes the file whole beside the one it holds and renames it over that one: the new file is
        // synced before the rename, and the folder after it.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string folder = Directory.CreateDirectory(Path.Combine(_directory, "trust")).FullName;
        string path = Path.Combine(folder, "known_hosts");
        string log = Path.Combine(_directory, "strace.log");
        using var server = OssuaryIdentity.Generate();
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path); // missing: Add creates it
        using (SelfTrace.Start(strace, "openat,fsync,fdatasync,rename,renameat,renameat2", log))
        {
            hosts.Add("example.org", 7000, server.PublicKey);
        }

        // strace -y shows each descriptor's path; ReadCalls gives the calls whole, in the order they were made.
        string[] calls = [.. SelfTrace.ReadCalls(log).Where(line => line.Contains(folder, StringComparison.Ordinal))];
        string trace = string.Join('\n', calls);
        int created = Array.FindIndex(calls, line => line.Contains("openat(", StringComparison.Ordinal) && line.Contains($"\"{path}\"", StringComparison.Ordinal) && line.Contains("O_CREAT", StringComparison.Ordinal));
        int draftSynced = Array.FindIndex(calls, line => line.Contains("sync(", StringComparison.Ordinal) && line.Contains($"<{path}.", StringComparison.Ordinal) && line.Contains(".tmp>) = 0", StringComparison.Ordinal));
        int renamed = Array.FindIndex(calls, line => line.Contains("rename", StringComparison.Ordinal) && line.Contains($"\"{path}\"", StringComparison.Ordinal) && line.EndsWith("= 0", StringComparison.Ordinal));
        int folderSynced = Array.FindLastIndex(calls, line => line.Contains("sync(", StringComparison.Ordinal) && line.Contains($"<{folder}>) = 0", StringComparison.Ordinal));
        Assert.True(created >= 0, $"no creating open of {path} in the trace:\n{trace}");
        Assert.True(draftSynced > created, $"the new file was not synced:\n{trace}");
        Assert.True(renamed > draftSynced, $"the new file was not renamed over the file after its sync:\n{trace}");
        Assert.True(folderSynced > renamed, $"the folder was not synced after the rename:\n{trace}");
        Assert.Equal(server.PublicKey, OssuaryKnownHosts.Load(path).Find("example.org", 7000));
    }
}
