using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A server whose handler throws sends Disconnect (error) of its own; Kestrel then closes the connection. The server's
/// log says what happened once, with the true cause (the handler's exception), and no line blames the transport for
/// the close that our own Disconnect caused. Real Kestrel under UseOssuary, a real client, the server's log captured
/// until the host has stopped (every connection over).
/// </summary>
public sealed class OwnErrorDisconnectLogTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task AHandlerThatThrowsIsLoggedOnceWithItsCauseAndNotAsTheTransportsFailure(bool clientSendsFirst) => Run(async () =>
    {
        var logs = new FakeLoggerProvider();
        using var keys = new MutualKeys();
        OssuaryTestServer server = clientSendsFirst
            ? await OssuaryTestServer.StartAsync<ServerFailureHintTests.ThrowingOnTheRequestHandler>(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)), OssuaryTestServer.LogTo(logs))
            : await OssuaryTestServer.StartAsync<ServerFailureHintTests.ThrowingAtOnceHandler>(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)), OssuaryTestServer.LogTo(logs));
        await using (server)
        {
            await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions());
            if (clientSendsFirst)
            {
                await client.Transport.Output.WriteAsync("a request the server fails on"u8.ToArray());
            }

            await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(client.Transport.Input));
        }

        FakeLogRecord[] said = logs.Collector.GetSnapshot().Where(r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Level >= LogLevel.Debug && r.Id.Id == 5).ToArray();
        string all = string.Join(Environment.NewLine, said.Select(r => $"{r.Message} | {r.Exception?.Message}"));
        FakeLogRecord line = Assert.Single(said);
        Assert.Contains("its application completed the output with InvalidOperationException", line.Exception?.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("The transport failed", all, StringComparison.Ordinal);
    });

    private static Task Run(Func<Task> test) => test().Within();
}
