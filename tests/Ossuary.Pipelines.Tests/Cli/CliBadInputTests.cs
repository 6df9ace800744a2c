using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>Bad input: one line on stderr, the documented exit code, never a stack trace (checked for every run).</summary>
[Collection(CliCollection.Name)]
public sealed class CliBadInputTests : CliTestBase
{
    private const string AnyKey = "1111111111111111111111111111111111111111111111111111111111111111";

    [Fact]
    public async Task AuthorizedKeysFromStdinLongerThanAnyAuthorizedKeysFileAreRefused()
    {
        // `--authorized-keys -` read stdin to its end however long, each line bounded but not their number:
        // an endless stream of key lines (`yes KEY | ossuary receive ... --authorized-keys -`) filled the memory.
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess listener = Start("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox", "--authorized-keys", "-");
        byte[] lines = System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat($"{AnyKey} a device of a fleet far larger than any\n", 1024)));
        try
        {
            for (long written = 0; written <= LongTrustFile.Limit; written += lines.Length)
            {
                await listener.StdinStream.WriteAsync(lines).AsTask().Within();
            }

            listener.CloseStdin();
        }
        catch (IOException)
        {
            // The tool stopped reading and closed its end: what it said is checked below.
        }

        AssertFails(await listener.WaitForExitAsync(), 2, "stdin: the authorized-keys file is longer than 16 MiB");
    }

    [Fact]
    public async Task AMissingKeyFileIsBadInput()
    {
        using var closed = new ClosedPort();
        ToolResult[] results = await Task.WhenAll(
            RunAsync("pubkey", "missing.key"),
            RunAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "missing.key"),
            RunAsync("connect", $"127.0.0.1:{closed.Port}", "--key", "missing.key", "--trust", AnyKey));

        foreach (ToolResult result in results)
        {
            AssertFails(result, 2, "key file 'missing.key' does not exist", "ossuary keygen -o missing.key");
        }
    }

    [Fact]
    public async Task AMalformedKeyFileIsBadInput()
    {
        string path = Path.Combine(Dir, "bad.key");
        File.WriteAllText(path, "this is not a key\n");
        SetMode("bad.key", OwnerOnly);

        ToolResult[] results = await Task.WhenAll(
            RunAsync("pubkey", "bad.key"),
            RunAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "bad.key"));

        foreach (ToolResult result in results)
        {
            AssertFails(result, 2, "key file 'bad.key' is malformed");
        }
    }

    [Fact]
    public async Task ADeviceNamedAsTheSecretKeyIsRefusedAsOneNotAsAFileToChmod()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // devices and their modes as Linux has them
        }

        // /dev/zero's 0666 was taken for a key file's, and the tool said "fix with: chmod 600 /dev/zero".
        using var closed = new ClosedPort();
        ToolResult[] results = await Task.WhenAll(
            RunAsync("pubkey", "/dev/zero"),
            RunAsync("connect", $"127.0.0.1:{closed.Port}", "--key", "/dev/zero", "--trust", AnyKey));

        foreach (ToolResult result in results)
        {
            AssertFails(result, 2, "/dev/zero: the secret key file is a device, not a regular file");
            Assert.DoesNotContain("chmod", result.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ASecretKeyReadableByOthersIsRefusedWithTheFix()
    {
        WriteKeyFile("open.key");
        SetMode("open.key", OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead); // 0644
        using var closed = new ClosedPort();

        ToolResult[] results = await Task.WhenAll(
            RunAsync("pubkey", "open.key"),
            RunAsync("connect", $"127.0.0.1:{closed.Port}", "--key", "open.key", "--trust", AnyKey));

        foreach (ToolResult result in results)
        {
            if (OperatingSystem.IsWindows())
            {
                Assert.NotEqual(2, result.ExitCode); // no POSIX modes to check there
                continue;
            }

            AssertFails(result, 2, "'open.key' is accessible by other users", "chmod 600 open.key");
            Assert.Equal("", result.Stdout);
        }
    }

    [Fact]
    public async Task AnUnreachableHostIsANetworkError()
    {
        using var closed = new ClosedPort();
        File.WriteAllText(Path.Combine(Dir, "file.txt"), "data");

        ToolResult[] results = await Task.WhenAll(
            RunAsync("connect", $"127.0.0.1:{closed.Port}", "--trust", AnyKey),
            RunAsync("send", "file.txt", $"127.0.0.1:{closed.Port}", "--trust", AnyKey));

        foreach (ToolResult result in results)
        {
            AssertFails(result, 4, $"cannot connect to 127.0.0.1:{closed.Port}");
        }
    }

    [Fact]
    public async Task APortInUseIsANetworkError()
    {
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        holder.Listen();
        int port = ((IPEndPoint)holder.LocalEndPoint!).Port;

        ToolResult[] results = await Task.WhenAll(
            RunAsync("listen", "--port", Port(port), "--bind", "127.0.0.1"),
            RunAsync("receive", "--port", Port(port), "--bind", "127.0.0.1"));

        foreach (ToolResult result in results)
        {
            AssertFails(result, 4, $"port {port} on 127.0.0.1 is already in use");
        }
    }

    [Fact]
    public async Task MalformedTrustFilesAreBadInputWithTheLineNumber()
    {
        File.WriteAllText(Path.Combine(Dir, "known_hosts"), $"# hosts\n\n127.0.0.1:7000 not-a-key\n");
        File.WriteAllText(Path.Combine(Dir, "authorized_keys"), $"{AnyKey} fine\nexample.org:7000 {AnyKey}\n");
        File.WriteAllText(Path.Combine(Dir, "no_keys"), "# nobody\n");
        using var closed = new ClosedPort();

        ToolResult[] results = await Task.WhenAll(
            RunAsync("connect", $"127.0.0.1:{closed.Port}", "--known-hosts", "known_hosts"),
            RunAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--authorized-keys", "authorized_keys"),
            RunAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--authorized-keys", "missing_keys"),
            RunAsync("receive", "--port", "0", "--bind", "127.0.0.1", "--authorized-keys", "no_keys"));

        AssertFails(results[0], 2, "known-hosts file is malformed: known_hosts:3: the key must be 64 hex characters");
        AssertFails(results[1], 2, "authorized-keys file is malformed: authorized_keys:2: the key must be 64 hex characters");
        AssertFails(results[2], 2, "authorized-keys file 'missing_keys' does not exist");
        AssertFails(results[3], 2, "authorized-keys file 'no_keys' holds no keys");
    }

    [Fact]
    public async Task TrustFilesOthersMayWriteAreRefusedWithTheFix()
    {
        // Whoever may write them could pin their own key for a server, or admit their own key.
        File.WriteAllText(Path.Combine(Dir, "known_hosts"), $"127.0.0.1:7000 {AnyKey}\n");
        File.WriteAllText(Path.Combine(Dir, "authorized_keys"), $"{AnyKey}\n");
        SetMode("known_hosts", OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.OtherWrite); // 0646
        SetMode("authorized_keys", OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead); // 0664
        using var closed = new ClosedPort();

        ToolResult[] results = await Task.WhenAll(
            RunAsync("connect", $"127.0.0.1:{closed.Port}", "--known-hosts", "known_hosts"),
            RunAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--authorized-keys", "authorized_keys"));

        if (OperatingSystem.IsWindows())
        {
            return; // no POSIX modes to check there
        }

        AssertFails(results[0], 2, "known_hosts: the known-hosts file is writable by other users", "chmod go-w known_hosts");
        AssertFails(results[1], 2, "authorized_keys: the authorized-keys file is writable by other users", "chmod go-w authorized_keys");
    }

    [Fact]
    public async Task AKnownHostsFileThatTofuCannotWriteIsBadInputNamingItAndNoConnection()
    {
        // --known-hosts in a "folder" that is a file: the key cannot be recorded.
        File.WriteAllText(Path.Combine(Dir, "not-a-folder"), "");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo");

        ToolResult[] results = await Task.WhenAll(
            RunAsync("connect", $"127.0.0.1:{ServerPort(server)}", "--tofu", "--known-hosts", "not-a-folder/known_hosts"),
            RunAsync("send", "not-a-folder", $"127.0.0.1:{ServerPort(server)}", "--tofu", "--known-hosts", "not-a-folder/known_hosts"));

        foreach (ToolResult result in results)
        {
            AssertFails(result, 2, $"cannot record 127.0.0.1:{ServerPort(server)}'s key {ServerKey(server)} in the known-hosts file 'not-a-folder/known_hosts'");
        }
    }

    [Fact]
    public async Task BadArgumentsAreBadInput()
    {
        ToolResult[] results = await Task.WhenAll(
            RunAsync("connect", "no-port-here"),
            RunAsync("connect", "127.0.0.1:7000", "--trust", "abc"),
            RunAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "no-such-dir"),
            RunAsync("send", "no-such-file", "127.0.0.1:7000"),
            RunAsync("listen", "--port", "0", "--bind", "not-an-address"));

        AssertFails(results[0], 2, "'no-port-here' is not HOST:PORT");
        AssertFails(results[1], 2, "--trust 'abc' is not a public key");
        AssertFails(results[2], 2, "output directory 'no-such-dir' does not exist");
        AssertFails(results[3], 2, "file 'no-such-file' does not exist");
        AssertFails(results[4], 2, "--bind 'not-an-address' is neither an IP address nor a name of this machine");
    }

    [Fact]
    public async Task AKeyNoPeerCanProveIsBadInput()
    {
        // The handshake refuses both keys: a --trust that can never match, and a known-hosts line the
        // library would then refuse to read (every later connect failing on a malformed file).
        const string Anonymous = "0100000000000000000000000000000000000000000000000000000000000000";
        const string Zeros = "0000000000000000000000000000000000000000000000000000000000000000";
        ToolResult[] results = await Task.WhenAll(
            RunAsync("connect", "127.0.0.1:7000", "--trust", Zeros),
            RunAsync("known-hosts", "set", "127.0.0.1:7000", Anonymous, "--known-hosts", "known_hosts"));

        AssertFails(results[0], 2, $"--trust '{Zeros}' is all zeros, which no peer can prove");
        AssertFails(results[1], 2, $"KEY '{Anonymous}' is the key an anonymous client sends, which no peer can prove");
        Assert.False(File.Exists(Path.Combine(Dir, "known_hosts")));
    }

    [Fact]
    public async Task AHostAKnownHostsFileCannotHoldIsBadInput()
    {
        // A known-hosts line is 'host[:port] key': a host with a space, or starting with '#', would not
        // read back. The library's refusal (ArgumentException) reached the user as "unexpected error:
        // ... (Parameter 'host')", exit 1, as if the tool had failed rather than the argument.
        const string Key = "2222222222222222222222222222222222222222222222222222222222222222";
        ToolResult[] results = await Task.WhenAll(
            RunAsync("known-hosts", "set", "a b:7000", Key, "--known-hosts", "known_hosts"),
            RunAsync("known-hosts", "set", "#lab:7000", Key, "--known-hosts", "known_hosts"),
            RunAsync("known-hosts", "set", "exam\u200Bple.org:7000", Key, "--known-hosts", "known_hosts"));

        AssertFails(results[0], 2, "'a b' cannot be a host in a known-hosts file");
        AssertFails(results[1], 2, "'#lab' cannot be a host in a known-hosts file");

        // A zero-width space is refused too (a line holding one is malformed): the message must say why.
        AssertFails(results[2], 2, "'exam\u200Bple.org' cannot be a host in a known-hosts file", "invisible character");
        Assert.All(results, result => Assert.DoesNotContain("Parameter", result.Stderr, StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(Dir, "known_hosts")));
    }

    [Fact]
    public async Task AnEmptyFileNameIsBadInput()
    {
        using var closed = new ClosedPort();
        ToolResult[] results = await Task.WhenAll(
            RunAsync("keygen", "-o", ""),
            RunAsync("connect", $"127.0.0.1:{closed.Port}", "--known-hosts", ""),
            RunAsync("known-hosts", "set", "127.0.0.1:7000", AnyKey, "--known-hosts", ""),
            RunAsync("known-hosts", "remove", "127.0.0.1:7000", "--known-hosts", ""));

        AssertFails(results[0], 2, "key file name is empty");
        foreach (ToolResult result in results[1..])
        {
            AssertFails(result, 2, "known-hosts file name is empty");
        }

        Assert.All(results, result => Assert.DoesNotContain("Parameter", result.Stderr, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AKnownHostsFileOfDashIsRefusedNotWrittenUnderThatName()
    {
        // '-' means stdin or stdout wherever a file is named; `known-hosts set` wrote a file called '-'.
        ToolResult[] results = await Task.WhenAll(
            RunAsync("known-hosts", "set", "127.0.0.1:7000", AnyKey, "--known-hosts", "-"),
            RunAsync("known-hosts", "remove", "127.0.0.1:7000", "--known-hosts", "-"));

        foreach (ToolResult result in results)
        {
            AssertFails(result, 2, "--known-hosts cannot be '-'");
        }

        Assert.False(File.Exists(Path.Combine(Dir, "-")), "a file called '-' was written");
    }

    [Fact]
    public async Task ArgumentsTheParserRejectsAreBadInput()
    {
        ToolResult[] results = await Task.WhenAll(
            RunAsync("listen"),
            RunAsync("no-such-command"),
            RunAsync("listen", "--port", "not-a-number"),
            RunAsync("listen", "--bogus"));

        Assert.All(results, result => Assert.True(result.ExitCode == 2, result.ToString()));
        Assert.All(results, result => Assert.Equal("", result.Stdout)); // no help text on stdout
        Assert.All(results, result => Assert.Contains("--help' for more information.", result.Stderr, StringComparison.Ordinal));

        // The README: "one line on stderr and a hint". A mistyped command was also said to be
        // missing ("Required command was not provided."), and an unknown option came with every
        // other complaint about the command line.
        Assert.All(results, result => Assert.Equal(2, result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length));
        Assert.DoesNotContain("not provided", results[1].Stderr, StringComparison.Ordinal);
        Assert.Contains("--bogus", results[3].Stderr, StringComparison.Ordinal);
        Assert.Contains("Option '--port' is required.", results[0].Stderr, StringComparison.Ordinal);
        Assert.Contains("no-such-command", results[1].Stderr, StringComparison.Ordinal);
        Assert.Contains("not-a-number", results[2].Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OutOfRangeNumbersAreExit2WithAPlainMessageAndNoTypeNames()
    {
        ToolResult[] results = await Task.WhenAll(
            RunAsync("listen", "--port", "99999"),
            RunAsync("receive", "--port", "65536"),
            RunAsync("listen", "--port", "7000", "--wait", "-1"),
            RunAsync("connect", "127.0.0.1:7000", "--wait", "soon"),
            RunAsync("connect", "127.0.0.1:7000", "--timeout", "-3"),
            RunAsync("connect", "127.0.0.1:99999"),
            RunAsync("connect", "127.0.0.1:0"));

        foreach (ToolResult result in results)
        {
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Equal("", result.Stdout);
            Assert.DoesNotContain("System.", result.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("unexpected error", result.Stderr, StringComparison.Ordinal);
        }

        // A server's --port 0 picks a free port (CliConventionsTests.PortZeroListensOnAFreePortAndSaysWhichOne); a client has no port 0 to reach.
        Assert.Contains("--port must be a port number from 0 to 65535, not '99999'", results[0].Stderr, StringComparison.Ordinal);
        Assert.Contains("--port must be a port number from 0 to 65535, not '65536'", results[1].Stderr, StringComparison.Ordinal);
        Assert.Contains("--wait must be a number of seconds (0 or more) or 'forever', not '-1'", results[2].Stderr, StringComparison.Ordinal);
        Assert.Contains("not 'soon'", results[3].Stderr, StringComparison.Ordinal);
        Assert.Contains("--timeout must be a number of seconds (0 or more), not '-3'", results[4].Stderr, StringComparison.Ordinal);
        AssertFails(results[5], 2, "'127.0.0.1:99999' is not HOST:PORT");
        AssertFails(results[6], 2, "'127.0.0.1:0' is not HOST:PORT");
    }

    [Fact]
    public async Task ADirectoryWhereAFileIsExpectedIsSaidToBeOne()
    {
        Directory.CreateDirectory(Path.Combine(Dir, "folder"));

        ToolResult[] results = await Task.WhenAll(
            RunAsync("pubkey", "folder"),
            RunAsync("keygen", "-o", "folder"),
            RunAsync("connect", "127.0.0.1:7000", "--key", "folder", "--trust", AnyKey),
            RunAsync("connect", "127.0.0.1:7000", "--known-hosts", "folder"),
            RunAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--authorized-keys", "folder"),
            RunAsync("send", "folder", "127.0.0.1:7000", "--trust", AnyKey));

        AssertFails(results[0], 2, "key file 'folder' is a directory, not a file");
        AssertFails(results[1], 2, "key file 'folder' is a directory, not a file");
        AssertFails(results[2], 2, "key file 'folder' is a directory, not a file");
        AssertFails(results[3], 2, "known-hosts file 'folder' is a directory, not a file");
        AssertFails(results[4], 2, "authorized-keys file 'folder' is a directory, not a file");
        AssertFails(results[5], 2, "file 'folder' is a directory, not a file");
    }

    [Fact]
    public async Task HelpListsTheExitCodes()
    {
        ToolResult help = await RunAsync("--help");

        AssertSucceeds(help);
        Assert.Contains("Exit codes: 0 success; 1 failure", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("3 untrusted or changed server key", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("known-hosts", help.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HelpAndBothReadmesListAFileThatAlreadyExistsUnderTheExitCodeItHas()
    {
        // keygen and receive refuse to replace a file without --force and exit 2, which the help and the
        // READMEs described as bad arguments, key or trust files only (the tool's README as "bad input"):
        // a script that read them took a receive that found the file there for a failed transfer.
        File.WriteAllText(Path.Combine(Dir, "secret.key"), "keep me");
        ToolResult refused = await RunAsync("keygen", "-o", "secret.key");
        ToolResult help = await RunAsync("--help");

        AssertFails(refused, 2, "already exists");
        const string Listed = "2 bad input (arguments, key and trust files, a file that already exists where one would be written without --force";
        Assert.Contains(Listed, Flat(help.Stdout), StringComparison.Ordinal);
        Assert.Contains(Listed, Flat(File.ReadAllText(Path.Combine(RepositoryPaths.Root(), "README.md"))), StringComparison.Ordinal);
        Assert.Contains(Listed, Flat(File.ReadAllText(Path.Combine(RepositoryPaths.Root(), "src", "Ossuary.Cli", "README.md"))), StringComparison.Ordinal);
    }

    /// <summary>The text on one line, without Markdown's code quotes.</summary>
    private static string Flat(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ").Replace("`", "", StringComparison.Ordinal);

    [Fact]
    public async Task HelpGivesARefusedTcpConnectionTheExitCodeItHas()
    {
        // The help listed "a refused or failed connection" under 1: a script that read it took a
        // server that was down (TCP's "connection refused") for exit 1, and the tool exits 4 for it.
        using var closed = new ClosedPort();
        ToolResult refused = await RunAsync("connect", $"127.0.0.1:{closed.Port}", "--trust", AnyKey);
        ToolResult help = await RunAsync("--help");

        AssertFails(refused, 4, "Connection refused");
        string text = System.Text.RegularExpressions.Regex.Replace(help.Stdout, @"\s+", " ");
        Assert.Contains("4 network (a refused TCP connection,", text, StringComparison.Ordinal);
        Assert.DoesNotContain("a refused or failed connection", text, StringComparison.Ordinal);
    }
}
