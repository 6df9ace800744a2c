using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A receiver that answers what no real one would: nothing it says can confirm a file the sender
/// did not finish sending, and the sender says what happened instead of failing on its own null.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliForgedReceiverTests : CliTestBase
{
    [Fact]
    public async Task AnEmptyAnswerToAnUnfinishedTransferIsNoConfirmation()
    {
        File.WriteAllBytes(Path.Combine(Dir, "big.bin"), new byte[10 * 1024 * 1024]);
        using var receiverKey = OssuaryIdentity.Generate();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task forged = Task.Run(async () =>
        {
            using Socket socket = await listener.AcceptSocketAsync();
            await using var stream = new OssuaryStream(new NetworkStream(socket, ownsSocket: false));
            await stream.AuthenticateAsServerAsync(new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, Identity = receiverKey });
            await stream.ReadExactlyAsync(new byte[1000]); // the header and the start of the file
            await stream.WriteAsync("\n"u8.ToArray()); // an empty answer, then Disconnect before the rest
            await stream.FlushAsync();
        });

        ToolResult sent = await RunAsync("send", "big.bin", $"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", "--trust", receiverKey.PublicKey.ToString());
        await forged.Within();

        AssertFails(sent, 1, "the receiver closed the connection during the transfer");
    }
}
