using System.Diagnostics;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary><c>ossuary keygen</c>, <c>ossuary pubkey</c> and <c>ossuary demo</c>.</summary>
[Collection(CliCollection.Name)]
public sealed class CliKeyAndDemoTests : CliTestBase
{
    [Fact]
    public async Task KeygenWritesAnOwnerOnlyKeyWhosePublicKeyPubkeyPrints()
    {
        ToolResult made = await RunAsync("keygen", "-o", "secret.key");

        AssertSucceeds(made);
        string publicKey = made.Stdout.Trim();
        Assert.Matches("^[0-9a-f]{64}\n$", made.Stdout);
        Assert.Contains("wrote secret key to secret.key", made.Stderr, StringComparison.Ordinal);
        string path = Path.Combine(Dir, "secret.key");
        AssertMode("secret.key", OwnerOnly);
        Assert.Matches("^[0-9a-f]{64}\n$", File.ReadAllText(path));
        Assert.NotEqual(publicKey, File.ReadAllText(path).Trim()); // the file holds the secret, not the public key

        ToolResult printed = await RunAsync("pubkey", "secret.key");
        AssertSucceeds(printed);
        Assert.Equal(made.Stdout, printed.Stdout);
    }

    [Fact]
    public async Task KeygenForceThatCannotWriteTheNewKeyLeavesTheOldOne()
    {
        await KeygenAsync("secret.key");
        string secret = File.ReadAllText(Path.Combine(Dir, "secret.key"));

        // No byte may be written to any file: the disk is full. The old key used to be deleted first.
        ToolResult failed = await StartWithFileSizeLimit(0, "keygen", "-o", "secret.key", "--force").WaitForExitAsync();

        Assert.Equal(secret, File.ReadAllText(Path.Combine(Dir, "secret.key")));
        AssertFails(failed, 1, "the old key is unchanged");
        Assert.Equal(["secret.key"], Directory.GetFiles(Dir, "*secret.key*").Select(Path.GetFileName));
    }

    [Fact]
    public async Task KeygenThatCannotWriteTheKeyLeavesNoFileUnderItsName()
    {
        // The disk is full: strace fails every write to a file (pwrite64, which .NET's file streams
        // use; stdout and stderr use write). An empty key file used to keep the name, said to have
        // "appeared while writing", so the next keygen refused to replace it and commands called it malformed.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        using ToolProcess keygen = ToolProcess.StartUnderStrace(
            strace, ["-f", "-qq", "-o", Path.Combine(Dir, "strace.log"), "-e", "trace=pwrite64", "-e", "inject=pwrite64:error=ENOSPC"],
            Dir, "keygen", "-o", "secret.key");

        ToolResult failed = await keygen.WaitForExitAsync();

        AssertFails(failed, 1, "cannot write the key to 'secret.key'", "No space left on device", "no key file was made");
        Assert.DoesNotContain("appeared", failed.Stderr, StringComparison.Ordinal);
        Assert.Equal("", failed.Stdout); // no public key for a secret that is nowhere
        Assert.Equal(["strace.log"], Directory.GetFiles(Dir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task KeygenThatCannotWriteTheKeyNamesTheKeyFileNotItsDraft()
    {
        // The key goes to a draft beside its name first, and the system's message named the draft:
        // "Could not find a part of the path '.../keys/.ossuary-key.<guid>.tmp'", a file the user never named.
        ToolResult missing = await RunAsync("keygen", "-o", "keys/secret.key");

        AssertFails(missing, 2, "cannot write the key to 'keys/secret.key'", Path.Combine(Dir, "keys", "secret.key"), "no key file was made");
        Assert.DoesNotContain(".ossuary-key", missing.Stderr, StringComparison.Ordinal);

        await KeygenAsync("secret.key");
        ToolResult full = await StartWithFileSizeLimit(0, "keygen", "-o", "secret.key", "--force").WaitForExitAsync();

        AssertFails(full, 1, "the old key is unchanged");
        Assert.DoesNotContain(".ossuary-key", full.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeygenSyncsTheKeyBeforeNamingItAndTheFolderAfter()
    {
        // keygen prints the public key for sharing: by then the secret must be on disk, its bytes and
        // its name, not only in the page cache, or a crash leaves a shared key whose secret is gone.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string keys = Directory.CreateDirectory(Path.Combine(Dir, "keys")).FullName;
        string log = Path.Combine(Dir, "strace.log");
        foreach (string[] args in new[] { new[] { "keygen", "-o", "keys/secret.key" }, ["keygen", "-o", "keys/secret.key", "--force"] })
        {
            using ToolProcess keygen = ToolProcess.StartTraced(strace, Dir, "fsync,fdatasync,rename,renameat,renameat2,link,linkat", log, args);
            AssertSucceeds(await keygen.WaitForExitAsync());

            // strace -y shows each descriptor's path; -f lines are in the order the calls were made.
            string[] calls = File.ReadAllLines(log);
            int named = Array.FindIndex(calls, line => Regex.IsMatch(line, @"(rename|link)\w*\(.*""(?<draft>[^""]*/keys/[^""/]+)"".*/keys/secret\.key"".*= 0"));
            string trace = string.Join('\n', calls.Where(line => line.Contains("keys", StringComparison.Ordinal)));
            Assert.True(named >= 0, $"{string.Join(' ', args)}: no rename or link to secret.key:\n{trace}");
            string draft = Regex.Match(calls[named], @"""(?<draft>[^""]*/keys/[^""/]+)""").Groups["draft"].Value;
            int synced = Array.FindIndex(calls, line => line.Contains($"sync(", StringComparison.Ordinal) && line.Contains($"<{draft}>) = 0", StringComparison.Ordinal));
            int folderSynced = Array.FindLastIndex(calls, line => line.Contains($"<{keys}>) = 0", StringComparison.Ordinal) && line.Contains("sync(", StringComparison.Ordinal));
            Assert.True(synced >= 0 && synced < named, $"{string.Join(' ', args)}: the key was not synced before it got its name:\n{trace}");
            Assert.True(folderSynced > named, $"{string.Join(' ', args)}: the folder was not synced after the key got its name:\n{trace}");
            File.Delete(log);
        }
    }

    [Fact]
    public async Task KeygenWritesTheKeyToOneNewFileAndNamesItOnce()
    {
        // keygen wrote its draft with the library's OssuarySecretKeyFile.Write, which made, synced and
        // linked a draft of its own, then synced and linked that draft again: two files and two names
        // for one secret, each left behind by a crash in between.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string keys = Directory.CreateDirectory(Path.Combine(Dir, "keys")).FullName;
        string log = Path.Combine(Dir, "strace.log");
        foreach (string[] args in new[] { new[] { "keygen", "-o", "keys/secret.key" }, ["keygen", "-o", "keys/secret.key", "--force"] })
        {
            using ToolProcess keygen = ToolProcess.StartTraced(strace, Dir, "openat,rename,renameat,renameat2,link,linkat", log, args);
            AssertSucceeds(await keygen.WaitForExitAsync());

            string[] calls = File.ReadAllLines(log).Where(line => line.Contains(keys + "/", StringComparison.Ordinal) && line.Contains("= ", StringComparison.Ordinal)).ToArray();
            string trace = string.Join('\n', calls);
            Assert.True(calls.Count(line => line.Contains("O_CREAT", StringComparison.Ordinal) && !line.Contains("= -1", StringComparison.Ordinal)) == 1, $"{string.Join(' ', args)}: not one new file:\n{trace}");
            Assert.True(calls.Count(line => Regex.IsMatch(line, @"^\d+ +(rename|link)\w*\(") && line.EndsWith("= 0", StringComparison.Ordinal)) == 1, $"{string.Join(' ', args)}: not one name given:\n{trace}");
            Assert.Equal(["secret.key"], Directory.GetFiles(keys).Select(Path.GetFileName));
            File.Delete(log);
        }
    }

    [Fact]
    public async Task KeygenWithoutForceNeverReplacesAFileThatTakesTheNameAsItNamesTheKey()
    {
        // A file takes the name just as keygen names the new key: File.Move without overwrite looked at
        // the name, then renamed over whatever appeared meanwhile. strace holds back every look at the
        // name, and every rename or link to it, by 2 s; the file appears once keygen is held in a call on
        // the name made after it wrote the key (strace's log shows it), before the naming takes effect.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string path = Path.Combine(Dir, "secret.key");
        using ToolProcess keygen = ToolProcess.StartUnderStrace(
            strace,
            ["-f", "-qq", "-ttt", "-o", Path.Combine(Dir, "strace.log"), "-P", path,
             "-e", "trace=stat,lstat,newfstatat,statx,rename,renameat,renameat2,link,linkat",
             "-e", "inject=stat,lstat,newfstatat,statx:delay_exit=2000000",
             "-e", "inject=rename,renameat,renameat2,link,linkat:delay_enter=2000000"],
            Dir, "keygen", "-o", "secret.key");

        // The new key is whole beside its name: keygen is about to name it.
        Stopwatch waited = Stopwatch.StartNew();
        string? draft;
        while ((draft = Directory.GetFiles(Dir, ".ossuary-key.*").FirstOrDefault(file => new FileInfo(file).Length == 65)) is null)
        {
            Assert.False(keygen.HasExited, $"keygen ended before it wrote the key:\n{keygen.Stderr}");
            Assert.True(waited.Elapsed < ToolProcess.HardTimeout, "keygen did not write the key in time");
            await Task.Delay(10);
        }

        // keygen is held in its last look at the name or in the call that names the key: the file appears now.
        await WaitForCallAfterDraftAsync(Path.Combine(Dir, "strace.log"), path, draft, keygen);
        File.WriteAllText(path, "someone's own file");

        AssertFails(await keygen.WaitForExitAsync(), 2, "'secret.key' appeared while writing the key; not overwriting it");
        Assert.Equal("someone's own file", File.ReadAllText(path));
        Assert.Equal(["secret.key", "strace.log"], Directory.GetFiles(Dir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task KeygenRefusesToOverwriteWithoutForce()
    {
        string first = await KeygenAsync("secret.key");
        string path = Path.Combine(Dir, "secret.key");
        string secret = File.ReadAllText(path);

        ToolResult refused = await RunAsync("keygen", "-o", "secret.key");

        AssertFails(refused, 2, "'secret.key' already exists", "--force");
        Assert.Equal("", refused.Stdout);
        Assert.Equal(secret, File.ReadAllText(path));

        // Someone holding the old (readable) file open must not get to read the new secret.
        SetMode("secret.key", OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        using var onlooker = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        ToolResult replaced = await RunAsync("keygen", "-o", "secret.key", "--force");

        AssertSucceeds(replaced);
        Assert.Equal(secret, await new StreamReader(onlooker).ReadToEndAsync());
        string second = replaced.Stdout.Trim();
        Assert.NotEqual(first, second);
        Assert.NotEqual(secret, File.ReadAllText(path));
        AssertMode("secret.key", OwnerOnly);
        ToolResult printed = await RunAsync("pubkey", "secret.key");
        AssertSucceeds(printed);
        Assert.Equal(second, printed.Stdout.Trim());
    }

    [Fact]
    public async Task DemoRunsAServerAndAClientAndReportsHandshakeAndThroughput()
    {
        ToolResult demo = await RunAsync("demo");

        AssertSucceeds(demo);
        Assert.Contains("handshake: 3 packets in", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("throughput: ", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("closed cleanly", demo.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADemoPastItsTimeLimitSaysSoNotThatItWasInterrupted()
    {
        // The demo stops itself after 60 s; it then said "interrupted", as if its user had pressed Ctrl+C. strace holds
        // its first accept4 (the demo server's, before the client connects) for 61 s: the limit passes meanwhile.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        using ToolProcess demo = ToolProcess.StartUnderStrace(strace, ["-f", "-o", Path.Combine(Dir, "strace.log"), "-e", "trace=accept4", "-e", "inject=accept4:delay_enter=61000000:when=1"], Dir, "demo");

        ToolResult result = await demo.WaitForExitAsync(TimeSpan.FromSeconds(180));

        AssertFails(result, 1, "the demo did not finish within its 60 s limit");
    }
}
