using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A known-hosts file another process holds locked (<c>flock -x</c>, as nobody here: any user who may open
/// the file can) while the tool would write it. The tool waited 10 s without a word and then failed with
/// exit 2, bad input, which tells a script to fix its arguments, though the same command works once the
/// lock goes. It now says that it waits, and fails as the system's failure, exit 1.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliKnownHostsLockTests : CliTestBase
{
    private const string Old = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string New = "2222222222222222222222222222222222222222222222222222222222222222";

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task SetOnAFileAnotherProcessHoldsLockedSaysItWaitsThenFailsAsTemporary()
    {
        string path = SharedFile($"example.org:7000 {Old}\n");

        ToolResult set;
        using (await ForeignLock.TakeAsync(path))
        {
            set = await RunAsync("known-hosts", "set", "example.org:7000", New, "--known-hosts", "known_hosts");
        }

        AssertFails(set, 1, "another process held the known-hosts file locked for longer than 10 s");
        Assert.Contains($"ossuary: another process holds known_hosts locked", set.Stderr, StringComparison.Ordinal);
        Assert.Contains("waiting up to 10 s for it", set.Stderr, StringComparison.Ordinal);
        // Read without a lock (.NET's reader takes a shared one, which the locker's last process may still keep out).
        Assert.Equal(OssuaryPublicKey.Parse(Old), OssuaryKnownHosts.Load(path).Find("example.org", 7000)); // unchanged
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task ATofuClientWhoseFileAnotherProcessHoldsLockedFailsAsTemporary()
    {
        string serverKey = WriteKeyFile("server.key");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--echo");
        int port = ServerPort(server);
        string path = SharedFile($"other.example:7000 {Old}\n");

        ToolResult connected;
        using (await ForeignLock.TakeAsync(path))
        {
            connected = await RunWithInputAsync("", "connect", $"127.0.0.1:{Port(port)}", "--known-hosts", "known_hosts", "--tofu");
        }

        AssertFails(connected, 1, $"cannot record 127.0.0.1:{Port(port)}'s key {serverKey}", "another process held the known-hosts file locked for longer than 10 s");
        Assert.Equal(KnownHostStatus.Unknown, OssuaryKnownHosts.Load(path).Check("127.0.0.1", port, OssuaryPublicKey.Parse(serverKey)));
    }

    /// <summary>known_hosts with <paramref name="content"/>, 0644 in a folder others may enter: the locking process, as nobody, opens it.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private string SharedFile(string content)
    {
        File.SetUnixFileMode(Dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return path;
    }
}
