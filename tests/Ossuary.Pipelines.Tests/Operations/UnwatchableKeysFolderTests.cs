using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// An authorized-keys file whose folder, or the folder's name in its parent, cannot be watched (the
/// inotify instance or watch limit reached): made to fail through the watcher's seam, as the system does.
/// </summary>
public sealed class UnwatchableKeysFolderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ossuary-unwatched-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task AKeyRevokedInARecreatedFolderThatCannotBeWatchedIsDroppedAndSaidAtError()
    {
        using var kept = OssuaryIdentity.Generate();
        using var revoked = OssuaryIdentity.Generate();
        string keys = Path.Combine(_root, "keys");
        string file = Path.Combine(keys, "authorized_keys");
        Directory.CreateDirectory(keys);
        await File.WriteAllTextAsync(file, OssuaryAuthorizedKeys.FormatLine(kept.PublicKey) + "\n" + OssuaryAuthorizedKeys.FormatLine(revoked.PublicKey) + "\n");
        bool folderFails = false;
        var logger = new FakeLogger();
        IReadOnlyList<OssuaryPublicKey>? admitted = null;

        // The parent's watch of the folder's name fails throughout, so that only the folder's own watch
        // (and what stands in for it) can see the file come back.
        using var watcher = new AuthorizedKeysFileWatcher(file, (_, k) => Volatile.Write(ref admitted, k), logger, folder =>
            folder == _root ? throw new IOException("no inotify instance left for the parent")
            : Volatile.Read(ref folderFails) ? throw new IOException("no inotify instance left for the folder")
            : new FileSystemWatcher(folder));

        Directory.Delete(keys, recursive: true);
        await HostilePeerTests.WaitForAsync(() => Volatile.Read(ref admitted) is { Count: 0 });
        Volatile.Write(ref folderFails, true);
        Directory.CreateDirectory(keys);
        await File.WriteAllTextAsync(file, OssuaryAuthorizedKeys.FormatLine(kept.PublicKey) + "\n");

        // Read by the poll that stands in for the parent's watch, or by the one that tries to watch the folder again.
        await HostilePeerTests.WaitForAsync(() => Volatile.Read(ref admitted) is { Count: 1 }
            && logger.Collector.GetSnapshot().Any(r => r.Exception?.Message == "no inotify instance left for the folder"));
        Assert.Equal(kept.PublicKey, Assert.Single(Volatile.Read(ref admitted)!));
        FakeLogRecord said = Assert.Single(logger.Collector.GetSnapshot(), r => r.Exception?.Message == "no inotify instance left for the folder");
        Assert.Equal(29, said.Id.Id);
        Assert.Equal(LogLevel.Error, said.Level);
    }

    [Fact]
    public async Task AFolderSwappedInByRenameIsSeenWhenItsNameCannotBeWatchedAndThatIsSaidAtError()
    {
        using var kept = OssuaryIdentity.Generate();
        using var revoked = OssuaryIdentity.Generate();
        string keys = Path.Combine(_root, "keys");
        string file = Path.Combine(keys, "authorized_keys");
        Directory.CreateDirectory(keys);
        await File.WriteAllTextAsync(file, OssuaryAuthorizedKeys.FormatLine(kept.PublicKey) + "\n" + OssuaryAuthorizedKeys.FormatLine(revoked.PublicKey) + "\n");
        var logger = new FakeLogger();
        IReadOnlyList<OssuaryPublicKey>? admitted = null;
        using var watcher = new AuthorizedKeysFileWatcher(file, (_, k) => Volatile.Write(ref admitted, k), logger, folder =>
            folder == _root ? throw new IOException("no inotify instance left for the parent") : new FileSystemWatcher(folder));

        // mv keys keys.old; mv keys.new keys: nothing changes inside the folder the file's watch follows.
        string replacement = Path.Combine(_root, "keys.new");
        Directory.CreateDirectory(replacement);
        await File.WriteAllTextAsync(Path.Combine(replacement, "authorized_keys"), OssuaryAuthorizedKeys.FormatLine(kept.PublicKey) + "\n");
        Directory.Move(keys, Path.Combine(_root, "keys.old"));
        Directory.Move(replacement, keys);

        await HostilePeerTests.WaitForAsync(() => Volatile.Read(ref admitted) is { Count: 1 });
        Assert.Equal(kept.PublicKey, Assert.Single(Volatile.Read(ref admitted)!));
        // Once at the start, and again whenever the folder is watched afresh (after the rename, perhaps).
        IReadOnlyList<FakeLogRecord> said = [.. logger.Collector.GetSnapshot().Where(r => r.Id.Id == 29)];
        Assert.NotEmpty(said);
        Assert.All(said, r => Assert.Equal((LogLevel.Error, "no inotify instance left for the parent"), (r.Level, r.Exception?.Message)));
    }

    [Fact]
    public void AWatcherWhoseFolderCannotBeWatchedLeavesNoPollingTimerBehind()
    {
        // Through a linked folder, so the file is polled from the start, before the watch fails.
        Directory.CreateDirectory(Path.Combine(_root, "v1"));
        File.CreateSymbolicLink(Path.Combine(_root, "current"), "v1");
        string file = Path.Combine(_root, "current", "authorized_keys");
        File.WriteAllText(file, "");

        WeakReference owner = StartWatchingAndFail(file);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        // A started timer is rooted by the runtime's timer queue, and its callback holds the half-made
        // watcher, which holds its owner's callback: still reachable, it would read the file for ever.
        Assert.False(owner.IsAlive);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference StartWatchingAndFail(string file)
    {
        var seen = new List<IReadOnlyList<OssuaryPublicKey>>();
        Action<string, IReadOnlyList<OssuaryPublicKey>> changed = (_, k) => seen.Add(k);
        Assert.Throws<IOException>(() => new AuthorizedKeysFileWatcher(file, changed, NullLogger.Instance, _ => throw new IOException("no inotify instance left")));
        return new WeakReference(changed);
    }
}
