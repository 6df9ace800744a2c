using System.Text;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary><c>ossuary known-hosts remove</c> and <c>set</c> on files as editors and umasks leave them.</summary>
[Collection(CliCollection.Name)]
public sealed class CliKnownHostsFileTests : CliTestBase
{
    private const string Old = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string New = "2222222222222222222222222222222222222222222222222222222222222222";

    [Fact]
    public async Task RemoveAndSetFindTheFirstLineOfAFileThatStartsWithAByteOrderMark()
    {
        // Notepad's UTF-8 starts the file with EF BB BF. The library reads past it and trusts the first
        // line; the tool matched lines on the raw text, where the mark is part of the host, and kept the
        // line: remove said the file held no key, and set said it now trusted the new key while the old
        // one, the one being replaced, stayed trusted beside it.
        string path = Path.Combine(Dir, "known_hosts");
        byte[] held = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes($"example.org:7000 {Old}\r\nother.example:7000 {Old}\r\n")];
        File.WriteAllBytes(path, held);
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("example.org", 7000, OssuaryPublicKey.Parse(Old)));

        AssertSucceeds(await RunAsync("known-hosts", "set", "example.org:7000", New, "--known-hosts", "known_hosts"));

        OssuaryKnownHosts after = OssuaryKnownHosts.Load(path);
        Assert.Equal(KnownHostStatus.Changed, after.Check("example.org", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("example.org", 7000, OssuaryPublicKey.Parse(New)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("other.example", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal(held, File.ReadAllBytes(path + ".old"));

        File.WriteAllBytes(path, held);
        ToolResult removed = await RunAsync("known-hosts", "remove", "example.org:7000", "--known-hosts", "known_hosts");

        AssertSucceeds(removed);
        Assert.Contains("removed 1 line(s)", removed.Stderr, StringComparison.Ordinal);
        Assert.Equal(KnownHostStatus.Unknown, OssuaryKnownHosts.Load(path).Check("example.org", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal($"other.example:7000 {Old}\r\n", File.ReadAllText(path));
    }

    [Fact]
    public async Task RemoveKeepsTheBytesOfTheLinesItKeeps()
    {
        // The file was decoded whole and encoded again: a comment in another encoding (Latin-1, say)
        // came back as U+FFFD on every line the removal kept.
        string path = Path.Combine(Dir, "known_hosts");
        byte[] kept = [.. Encoding.ASCII.GetBytes($"other.example:7000 {Old} caf"), 0xE9, (byte)'\n'];
        File.WriteAllBytes(path, [.. Encoding.ASCII.GetBytes($"example.org:7000 {Old}\n"), .. kept]);

        AssertSucceeds(await RunAsync("known-hosts", "remove", "example.org:7000", "--known-hosts", "known_hosts"));

        Assert.Equal(kept, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task SetAndRemoveRefuseAUtf16FileAndLeaveItAlone()
    {
        // Windows PowerShell 5's `>` writes UTF-16, which the library reads. The tool split the file on
        // bytes as UTF-8: remove found no line for the server, and set appended a UTF-8 line, leaving a
        // file every later connect called malformed, after saying it now trusted the key.
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {Old}\r\n", Encoding.Unicode);
        byte[] held = File.ReadAllBytes(path);

        ToolResult set = await RunAsync("known-hosts", "set", "other.example:7000", New, "--known-hosts", "known_hosts");
        ToolResult removed = await RunAsync("known-hosts", "remove", "example.org:7000", "--known-hosts", "known_hosts");

        AssertFails(set, 2, "known_hosts", "UTF-16", "save it as UTF-8");
        AssertFails(removed, 2, "known_hosts", "UTF-16", "save it as UTF-8");
        Assert.Equal(held, File.ReadAllBytes(path));
        Assert.False(File.Exists(path + ".old"));
    }

    [Fact]
    public async Task SetUnderAPermissiveUmaskMakesAFileAndFoldersThatConnectsAccept()
    {
        // umask 002 (a user's own group, common on Debian and in containers): the tool created the file
        // and the folders above it as the umask left them, group-writable, where the library makes them
        // 0644 and 0700. Every later connect then refused the file the tool had just written.
        ToolResult set = await StartWithUmask("002", "known-hosts", "set", "example.org:7000", New, "--known-hosts", "hosts/per-site/known_hosts").WaitForExitAsync();

        AssertSucceeds(set);
        string path = Path.Combine(Dir, "hosts", "per-site", "known_hosts");
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("example.org", 7000, OssuaryPublicKey.Parse(New)));
        const UnixFileMode UserOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        AssertMode(Path.Combine("hosts", "per-site", "known_hosts"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        AssertMode(Path.Combine("hosts", "per-site"), UserOnly);
        AssertMode("hosts", UserOnly);
    }
}
