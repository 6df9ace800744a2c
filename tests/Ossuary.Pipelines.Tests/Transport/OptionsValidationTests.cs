using System.Net.Sockets;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>UseOssuary checks its options while the pipeline is built, and says what to fix.</summary>
public class OptionsValidationTests
{
    /// <summary>
    /// Null server options are an ArgumentNullException naming them, as null client options are;
    /// the server's overloads read the options' AuthorizedKeysFile before checking, and threw NullReferenceException.
    /// </summary>
    [Fact]
    public async Task NullServerOptionsAreAnArgumentNullExceptionNamingThem()
    {
        LinkedPipes link = LinkedPipes.Transparent(out _);
        await using var stream = new OssuaryStream(new MemoryStream());

        ArgumentNullException pipe = await Assert.ThrowsAsync<ArgumentNullException>(() => OssuaryDuplexPipe.AcceptAsync(link.Server, null!).Within());
        ArgumentNullException streamed = await Assert.ThrowsAsync<ArgumentNullException>(() => stream.AuthenticateAsServerAsync(null!).Within());

        Assert.Equal(("options", "options"), (pipe.ParamName, streamed.ParamName));
    }

    [Fact]
    public void AuthenticatedServerWithoutIdentityIsRefusedWhenConfigured()
    {
        using var clientKey = OssuaryIdentity.Generate();

        var refused = Assert.Throws<InvalidOperationException>(() => NewBuilder().UseOssuary(o => o.AuthorizedClientKeys.Add(clientKey.PublicKey)));

        Assert.Contains("OssuaryServerOptions.Identity", refused.Message);
    }

    [Fact]
    public void AuthenticatedServerThatAdmitsNobodyIsRefusedWhenConfigured()
    {
        using var serverKey = OssuaryIdentity.Generate();

        var refused = Assert.Throws<InvalidOperationException>(() => NewBuilder().UseOssuary(o => o.Identity = serverKey));

        Assert.Contains("AuthorizedClientKeys", refused.Message);
        Assert.Contains("AuthorizeClient", refused.Message);
    }

    [Theory]
    [InlineData(true, false, "OssuaryServerOptions.AuthorizedClientKeys")]
    [InlineData(false, true, "OssuaryServerOptions.AuthorizeClient")]
    [InlineData(true, true, "AuthorizedClientKeys and AuthorizeClient")]
    public void UnauthenticatedServerWithAnAllowListIsRefusedWhenConfigured(bool keys, bool callback, string named)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();

        // The mode admits everyone: an allow-list beside it would be a protection that is not there.
        var refused = Assert.Throws<InvalidOperationException>(() => NewBuilder().UseOssuary(o =>
        {
            o.Identity = serverKey;
            o.Mode = OssuaryServerMode.Unauthenticated;
            if (keys)
            {
                o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            }

            if (callback)
            {
                o.AuthorizeClient = (_, _, _) => ValueTask.FromResult(false);
            }
        }));

        Assert.Contains(named, refused.Message);
        Assert.Contains("Mode = Authenticated", refused.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void HandshakeTimeoutThatIsNotPositiveIsRefusedWhenConfigured(int seconds)
    {
        using var serverKey = OssuaryIdentity.Generate();

        var refused = Assert.Throws<InvalidOperationException>(() => NewBuilder().UseOssuary(o =>
        {
            o.Identity = serverKey;
            o.Mode = OssuaryServerMode.Unauthenticated;
            o.HandshakeTimeout = TimeSpan.FromSeconds(seconds);
        }));

        Assert.Contains("HandshakeTimeout must be positive", refused.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void MaxPendingHandshakesBelowOneIsRefusedWhenConfigured(int bound)
    {
        using var serverKey = OssuaryIdentity.Generate();

        var refused = Assert.Throws<InvalidOperationException>(() => NewBuilder().UseOssuary(o =>
        {
            o.Identity = serverKey;
            o.Mode = OssuaryServerMode.Unauthenticated;
            o.MaxPendingHandshakes = bound;
        }));

        Assert.Contains($"MaxPendingHandshakes is {bound}; it must be at least 1", refused.Message);
    }

    [Fact]
    public Task ClientHandshakeTimeoutThatIsNotPositiveIsRefusedBeforeConnecting() => Run(async () =>
    {
        var options = new OssuaryClientOptions { HandshakeTimeout = TimeSpan.Zero };

        // Port 1 on loopback: nothing listens there, so a connect attempt would be a SocketException.
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => OssuaryClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), options));

        Assert.Contains("HandshakeTimeout must be positive", refused.Message);
    });

    /// <summary>
    /// A refused timing setting of a client names the client's options, as its other messages do
    /// ("OssuaryClientOptions.TrustedServerKeys holds ..."): "HandshakeTimeout must be positive" alone
    /// did not say whether the client's options or a server's in the same process were wrong.
    /// </summary>
    [Theory]
    [InlineData(nameof(OssuaryClientOptions.ConnectTimeout))]
    [InlineData(nameof(OssuaryClientOptions.HandshakeTimeout))]
    [InlineData(nameof(OssuaryClientOptions.HandshakeStepTimeout))]
    [InlineData(nameof(OssuaryClientOptions.TimeProvider))]
    public Task ARefusedClientTimingSettingIsNamedWithItsOptions(string setting) => Run(async () =>
    {
        var options = new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } };
        switch (setting)
        {
            case nameof(OssuaryClientOptions.ConnectTimeout):
                options.ConnectTimeout = TimeSpan.Zero;
                break;
            case nameof(OssuaryClientOptions.HandshakeTimeout):
                options.HandshakeTimeout = TimeSpan.Zero;
                break;
            case nameof(OssuaryClientOptions.HandshakeStepTimeout):
                options.HandshakeStepTimeout = TimeSpan.Zero;
                break;
            default:
                options.TimeProvider = null!;
                break;
        }

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => OssuaryClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), options));

        Assert.StartsWith($"OssuaryClientOptions.{setting} ", refused.Message, StringComparison.Ordinal);
    });

    [Fact]
    public Task AClientThatTrustsNoServerIsRefusedBeforeConnecting() => Run(async () =>
    {
        using var clientKey = OssuaryIdentity.Generate();
        var options = new OssuaryClientOptions { Identity = clientKey };

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => OssuaryClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), options));

        Assert.Contains("trusts no server", refused.Message);
        options.TrustServer = (_, _) => ValueTask.FromResult(false);
        await Assert.ThrowsAsync<SocketException>(() => OssuaryClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), options));
    });

    [Fact]
    public Task KestrelWithInvalidOssuaryOptionsFailsToStart() => Run(async () =>
    {
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => OssuaryTestServer.StartEchoAsync(o => o.Mode = OssuaryServerMode.Authenticated));

        Assert.Contains("Identity", refused.Message);
    });

    [Fact]
    public Task UnauthenticatedServerWithoutIdentityWorksAndWarnsOnce() => Run(async () =>
    {
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(o => o.Mode = OssuaryServerMode.Unauthenticated, OssuaryTestServer.LogTo(logs));
        var seen = new ConcurrentQueue<OssuaryPublicKey>();
        var options = new OssuaryClientOptions
        {
            TrustServer = (key, _) =>
            {
                seen.Enqueue(key);
                return ValueTask.FromResult(true);
            },
        };

        for (int i = 0; i < 2; i++)
        {
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
            await connection.Transport.Output.WriteAsync("hi"u8.ToArray());
            Assert.Equal("hi"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 2));
        }

        FakeLogRecord warning = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == 10);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Equal(2, seen.Count);
        Assert.Single(seen.Distinct()); // one generated identity for the server's lifetime
        Assert.Contains(seen.First().ToString(), warning.Message); // the warning names the public key, so it can be pinned
    });

    private static ConnectionBuilder NewBuilder() => new(new ServiceCollection().AddLogging().BuildServiceProvider());

    private static Task Run(Func<Task> test) => test().Within();
}
