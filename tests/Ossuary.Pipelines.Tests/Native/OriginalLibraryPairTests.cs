using System.Globalization;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// Drop-in, proven against the real thing: the C programs of tests/native built once against our
/// library and once against the original libossuary 0.5.2 (its libossuary.so and its own
/// ossuary.h, from ../shared/interop/libossuary-0.5.2), and run in mixed pairs over TCP on
/// 127.0.0.1: tcp_client on one library against tcp_server on the other, both directions.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class OriginalLibraryPairTests(NativeLibraryFixture native)
{
    /// <summary>What tcp_client.c sends and expects back: "hello from C", 16384 bytes, then 3000 bytes.</summary>
    private const int ClientPayload = 12 + 16384 + 3000;

    public enum Admission
    {
        /// <summary>An authenticated server that admits the client's key; the client trusts the server's key.</summary>
        KnownKeys,

        /// <summary>An unauthenticated server; an anonymous client that trusts the server on first use.</summary>
        AnonymousTrustOnFirstUse,

        /// <summary>An authenticated server and a client with a key it does not know.</summary>
        UnknownClient,
    }

    public static TheoryData<NativeLink, NativeLink, Admission> Pairs() => new()
    {
        // Our client against the original server, and the original client against ours.
        { NativeLink.Shared, NativeLink.Original, Admission.KnownKeys },
        { NativeLink.Static, NativeLink.Original, Admission.AnonymousTrustOnFirstUse },
        { NativeLink.Shared, NativeLink.Original, Admission.UnknownClient },
        { NativeLink.Original, NativeLink.Shared, Admission.KnownKeys },
        { NativeLink.Original, NativeLink.Static, Admission.AnonymousTrustOnFirstUse },
        { NativeLink.Original, NativeLink.Shared, Admission.UnknownClient },

        // The original on both ends: the programs themselves drive libossuary 0.5 correctly.
        { NativeLink.Original, NativeLink.Original, Admission.KnownKeys },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public async Task CClientAndCServerOnDifferentLibrariesTalkOverTcp(NativeLink clientLink, NativeLink serverLink, Admission admission)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        List<string> serverArguments = admission == Admission.AnonymousTrustOnFirstUse
            ? [SeedHex(serverKey), "2"]
            : [SeedHex(serverKey), "1", clientKey.PublicKey.ToString()];

        string serverProgram = await native.ProgramAsync("tcp_server", serverLink);
        string clientProgram = await native.ProgramAsync("tcp_client", clientLink);
        await using NativeProcess server = NativeProcess.Start(serverProgram, serverArguments, native.NeutralDirectory);
        string port = (await server.WaitForLineAsync("port "))["port ".Length..];
        string clientSecret = admission switch
        {
            Admission.KnownKeys => SeedHex(clientKey),
            Admission.UnknownClient => SeedHex(strangerKey),
            _ => "-",
        };
        string trust = admission == Admission.AnonymousTrustOnFirstUse ? "tofu" : serverKey.PublicKey.ToString();

        ProcessResult client = await NativeProcess.RunAsync(clientProgram, [port, clientSecret, trust], native.NeutralDirectory);
        ProcessResult served = await server.WaitForExitAsync(TimeSpan.FromSeconds(60));
        string both = $"{client}\n{served}";

        if (admission == Admission.UnknownClient)
        {
            // The client counts itself established once it has sent its authentication (the
            // handshake is 1.5 round trips), then the server's refusal (a Reset) takes that back
            // before any byte is echoed; the server never admits it.
            Assert.True(client.ExitCode != 0, both);
            Assert.DoesNotContain("echoed", client.Output, StringComparison.Ordinal);
            Assert.True(served.ExitCode == 5, both);
            Assert.DoesNotContain("client_key", served.Output, StringComparison.Ordinal);
            Assert.Contains("ended after 0 messages, 0 bytes", served.Output, StringComparison.Ordinal);
            return;
        }

        Assert.True(client.ExitCode == 0, both);
        Assert.Contains($"echoed {ClientPayload} bytes\n", client.Output, StringComparison.Ordinal);
        if (admission == Admission.AnonymousTrustOnFirstUse)
        {
            Assert.Contains($"trusting server_key {serverKey.PublicKey}\n", client.Output, StringComparison.Ordinal);
        }

        // libossuary 0.5's C API has no ossuary_disconnect: built on it, the client just closes.
        bool clientHasDisconnect = clientLink != NativeLink.Original;
        Assert.Equal(clientHasDisconnect, !client.Output.Contains("no disconnect in this library", StringComparison.Ordinal));

        Assert.True(served.ExitCode == 0, both);
        string expectedKey = admission == Admission.KnownKeys ? clientKey.PublicKey.ToString() : OssuaryPublicKey.Anonymous.ToString();
        Assert.Contains($"client_key {expectedKey}\n", served.Output, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"ended after 3 messages, {ClientPayload} bytes"), served.Output, StringComparison.Ordinal);
    }

    private static string SeedHex(OssuaryIdentity identity)
    {
        Span<char> hex = stackalloc char[64];
        Assert.True(identity.TryFormatSeedHex(hex, out _));
        return new string(hex);
    }
}
