using System.Buffers;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The peer's data that our Disconnect left unread: frames the application had no room for yet when it
/// completed its output, or frames the peer sent before our Disconnect reached it. The protocol has no
/// half-close, so they are never delivered, and an input that ended cleanly told the application it had
/// everything the peer sent. It must say how much it lost instead.
/// </summary>
public partial class DataAfterOurDisconnectTests
{
    private const int Frame = 16 * 1024;

    [Fact]
    public async Task FramesTheApplicationHadNoRoomForWhenItCompletedItsOutputAreReportedWithTheirSize()
    {
        using var keys = new MutualKeys();
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys);
        using SessionSocketPeer serverPeer = server;
        await using OssuaryClientConnection clientConnection = client;

        // Eight full frames: more than the input holds before the inbound loop waits for the application.
        const int Frames = 8;
        await server.SendTogetherAsync([.. Enumerable.Range(0, Frames).Select(_ => server.DataPacket(new byte[Frame]))]);
        await client.Transport.Output.CompleteAsync(); // Disconnect, with the frames unread
        Task answering = AnswerDisconnectAsync(server);

        (long delivered, OssuaryException failure) = await ReadUntilFailedAsync(client.Transport.Input);

        await answering;
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failure.Reason);
        Assert.True(delivered < Frames * Frame, $"all {delivered} bytes were delivered: the test lost no frame, and shows nothing");
        Assert.Equal(Frames * Frame, delivered + ReportedBytes(failure));
    }

    [Fact]
    public async Task FramesThePeerSentBeforeItReadOurDisconnectAreReportedWithTheirSize()
    {
        using var keys = new MutualKeys();
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys);
        using SessionSocketPeer serverPeer = server;
        await using OssuaryClientConnection clientConnection = client;

        await client.Transport.Output.CompleteAsync();

        // The server, not having read the Disconnect yet, sends three frames, then reads it and answers.
        await server.WaitUntilUnreadAsync(1);
        await server.SendTogetherAsync(server.DataPacket(new byte[100]), server.DataPacket(new byte[200]), server.DataPacket(new byte[300]));
        await AnswerDisconnectAsync(server);

        (long delivered, OssuaryException failure) = await ReadUntilFailedAsync(client.Transport.Input);

        Assert.Equal(0, delivered);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failure.Reason);
        Assert.Equal(600, ReportedBytes(failure));
        Assert.Contains("3 frame(s)", failure.Message);
    }

    [Fact]
    public async Task APeerThatSentNothingMoreAndAnswersOurDisconnectEndsTheInputCleanly()
    {
        using var keys = new MutualKeys();
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys);
        using SessionSocketPeer serverPeer = server;
        await using OssuaryClientConnection clientConnection = client;

        await server.SendTogetherAsync(server.DataPacket("last"u8));
        Assert.Equal("last"u8.ToArray(), await PipeReads.ReadExactlyAsync(client.Transport.Input, 4));
        await client.Transport.Output.CompleteAsync();
        await AnswerDisconnectAsync(server);

        Assert.Empty(await PipeReads.ReadToEndAsync(client.Transport.Input).Within());
    }

    /// <summary>Reads the adapter's Disconnect and sends the session's answer (a Reset, as the original's and ours do once established).</summary>
    private static async Task AnswerDisconnectAsync(SessionSocketPeer server)
    {
        (_, OssuaryErrorReason ended) = await server.ReadUntilEndedAsync();
        Assert.Equal(OssuaryErrorReason.ConnectionClosed, ended);
        var answer = new ArrayBufferWriter<byte>();
        while (server.Session.WriteHandshake(answer) > 0)
        {
        }

        Assert.True(answer.WrittenCount > 0, "the session wrote no answer to the Disconnect");
        await server.SendTogetherAsync(answer.WrittenSpan.ToArray());
    }

    private static async Task<(long Delivered, OssuaryException Failure)> ReadUntilFailedAsync(System.IO.Pipelines.PipeReader input)
    {
        long delivered = 0;
        while (true)
        {
            System.IO.Pipelines.ReadResult read;
            try
            {
                read = await input.ReadAsync().AsTask().Within();
            }
            catch (OssuaryException failure)
            {
                return (delivered, failure);
            }

            delivered += read.Buffer.Length;
            input.AdvanceTo(read.Buffer.End);
            Assert.False(read.IsCompleted, $"the input ended cleanly after {delivered} bytes");
        }
    }

    private static long ReportedBytes(OssuaryException failure)
    {
        Match count = ReportedCount().Match(failure.Message);
        Assert.True(count.Success, failure.Message);
        return long.Parse(count.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"with (\d+) byte\(s\) of the peer's data")]
    private static partial Regex ReportedCount();
}
