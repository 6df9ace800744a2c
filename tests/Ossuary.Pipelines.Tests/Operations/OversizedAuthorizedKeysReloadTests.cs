using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>A watched authorized-keys file replaced by one longer than any trust file is read (16 MiB).</summary>
public sealed class OversizedAuthorizedKeysReloadTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-oversized-keys-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AFileGrownPastTheBoundIsAFailedReloadAndTheKeysInForceStay()
    {
        // Read whole however long, a watched file's every key (and its text, kept to compare with the next read)
        // was held in memory, and a file of a kept key repeated past any trust file's length was taken as a
        // reload. It is a failed reload (event 22): the keys in force stay, and the watch still follows the file.
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var otherKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey), OssuaryAuthorizedKeys.FormatLine(otherKey.PublicKey)]);
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        string draft = Path.Combine(_folder, "draft");
        LongTrustFile.Write(draft, OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey, "a device of a fleet far larger than any"));
        File.Move(draft, file, overwrite: true);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 22));

        FakeLogRecord failed = logs.Collector.GetSnapshot().First(r => r.Id.Id == 22);
        Assert.IsType<FormatException>(failed.Exception);
        Assert.StartsWith($"{file}: the authorized-keys file is longer than 16 MiB", failed.Exception.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Id.Id == 21); // no reload took the file
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(otherKey, serverKey.PublicKey))).DisposeAsync();

        // The file fixed, with one key revoked: the watch still follows it.
        await File.WriteAllLinesAsync(draft, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey)]);
        File.Move(draft, file, overwrite: true);
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);
        await Echo.AssertRefusedAndServedAsync(endpoint, refused: otherKey, served: keptKey, serverKey.PublicKey);
    }
}
