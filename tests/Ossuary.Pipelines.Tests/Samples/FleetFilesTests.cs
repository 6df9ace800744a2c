using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.Keys;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>A <c>fleet</c> run that fails partway takes its files away again, and says so only when it could.</summary>
public sealed class FleetFilesTests
{
    [Fact]
    public void FilesThatCannotBeRemovedAreNamedNotClaimedRemoved()
    {
        // A file system that went read-only under the run (ext4's errors=remount-ro after an I/O
        // error): the clean-up cannot delete what the run wrote, and the error used to say "the
        // files written so far were removed" all the same, so the operator's next run was refused.
        using var disk = FullDisk.Mount();
        string directory = Path.Combine(disk.Path, "fleet");
        var made = new FleetFiles(directory, Path.Combine(directory, "devices"));
        made.CreateDirectories();
        string key = Path.Combine(directory, "server.key");
        File.WriteAllText(key, "secret");
        made.Add(key);
        disk.RemountReadOnly();

        IReadOnlyList<string> left = made.Remove();

        string only = Assert.Single(left);
        Assert.StartsWith(key + " (", only, StringComparison.Ordinal);
        Assert.True(File.Exists(key));
    }

    [Fact]
    public void WhatARunMadeIsRemovedAndNothingIsReportedLeft()
    {
        using var disk = FullDisk.Mount();
        string directory = Path.Combine(disk.Path, "fleet");
        var made = new FleetFiles(directory, Path.Combine(directory, "devices"));
        made.CreateDirectories();
        string key = Path.Combine(directory, "devices", "device-0000.key");
        File.WriteAllText(key, "secret");
        made.Add(key);

        Assert.Empty(made.Remove());
        Assert.False(Directory.Exists(directory));
    }
}
