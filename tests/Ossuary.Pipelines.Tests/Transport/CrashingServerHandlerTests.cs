using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A Kestrel handler that throws half-way through its reply failed the connection: the client must
/// not read the half reply followed by a clean end, as if the server had finished.
/// </summary>
public class CrashingServerHandlerTests
{
    [Fact]
    public Task AHandlerThatThrowsEndsTheClientsInputWithAFailureAfterItsBytes() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync<HalfReplyThenCrashHandler>();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);

        Assert.Equal(HalfReplyThenCrashHandler.HalfReply.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, HalfReplyThenCrashHandler.HalfReply.Length));
        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(connection.Transport.Input));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
    });

    private static Task Run(Func<Task> test) => test().Within();

    /// <summary>Writes the first half of a reply and throws, as a handler with a bug does.</summary>
    public sealed class HalfReplyThenCrashHandler : ConnectionHandler
    {
        public static ReadOnlyMemory<byte> HalfReply { get; } = "the first half of a reply"u8.ToArray();

        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            await connection.Transport.Output.WriteAsync(HalfReply);
            throw new InvalidOperationException("the handler crashed half-way through its reply");
        }
    }
}
