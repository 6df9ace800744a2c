using System.IO.Pipelines;
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
        using ForgedReceiver forged = ForgedReceiver.Start(async (stream, _) =>
        {
            await stream.ReadExactlyAsync(new byte[1000]); // the header and the start of the file
            await stream.WriteAsync("\n"u8.ToArray()); // an empty answer, then Disconnect before the rest
            await stream.FlushAsync();
        });

        ToolResult sent = await RunAsync("send", "big.bin", forged.Address, "--trust", forged.Key.PublicKey.ToString());
        await forged.Running.Within();

        AssertFails(sent, 1, "the receiver closed the connection during the transfer");
    }

    [Fact]
    public async Task AConfirmationOfAnotherHashIsSaidToBeOneNotARefusal()
    {
        // A receiver that took the whole file and answered OK with a hash that is not the file's: the
        // sender said "the receiver refused the file: OK ...", which hides that what arrived differs.
        byte[] file = new byte[100];
        File.WriteAllBytes(Path.Combine(Dir, "small.bin"), file);
        string wrong = new('0', 64);
        using ForgedReceiver forged = ForgedReceiver.Start(async (stream, _) =>
        {
            int header = $"OSSUARY-FILE/1 {file.Length} {Convert.ToBase64String("small.bin"u8)}\n".Length;
            await stream.ReadExactlyAsync(new byte[header + file.Length + 32]); // the header, the file and its hash
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"OK {wrong}\n"));
            await stream.FlushAsync();
            await stream.ReadAtLeastAsync(new byte[1], 1, throwOnEndOfStream: false); // until the sender closes
        });

        ToolResult sent = await RunAsync("send", "small.bin", forged.Address, "--trust", forged.Key.PublicKey.ToString());
        await forged.Running.Within();

        string ours = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(file));
        AssertFails(sent, 1, $"the receiver confirmed a different SHA-256 ({wrong}) than the file's ({ours}): what it received is not what was sent");
    }

    [Fact]
    public async Task AReceiverWhoseConnectionResetsMidTransferIsNotCalledARefusal()
    {
        // A receiver that took the header and the first bytes, then went away with its socket reset (its
        // process killed with the sender's bytes unread): the sender said "refused this client", as if
        // an allow-list had turned its key away.
        File.WriteAllBytes(Path.Combine(Dir, "big.bin"), new byte[10 * 1024 * 1024]);
        using ForgedReceiver forged = ForgedReceiver.Start(async (stream, socket) =>
        {
            await stream.ReadExactlyAsync(new byte[1000]); // the header and the start of the file

            socket.LingerState = new LingerOption(true, 0);
            socket.Close(); // a reset, under the stream
        }, leaveInnerStreamOpen: true);

        ToolResult sent = await RunAsync("send", "big.bin", forged.Address, "--trust", forged.Key.PublicKey.ToString());
        await forged.Running.Within();

        // ConnectionFailed when a read meets the reset, Truncated when a write met it first (a read then finds the end).
        AssertFails(sent, 1, $"the connection to {forged.Address} failed during the transfer (");
        Assert.DoesNotContain("refused", sent.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReceiverThatFailsMidTransferIsNotCalledARefusalAlone()
    {
        // A receiver that took the header and the first bytes, then failed and said so (Disconnect with
        // error): the sender said only that it had been refused, which an allow-list does the same way
        // right after connecting. It cannot tell the two apart, so it names both.
        File.WriteAllBytes(Path.Combine(Dir, "big.bin"), new byte[10 * 1024 * 1024]);
        using ForgedReceiver forged = ForgedReceiver.StartRaw(async (socket, key) =>
        {
            await using var network = new NetworkStream(socket, ownsSocket: false);
            await using OssuaryDuplexPipe secure = await OssuaryDuplexPipe.AcceptAsync(
                new DuplexPipe(PipeReader.Create(network), PipeWriter.Create(network)),
                new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, Identity = key });
            ReadResult read;
            while ((read = await secure.Input.ReadAsync()).Buffer.Length < 1000) // the header and the start of the file
            {
                secure.Input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            }

            secure.Input.AdvanceTo(read.Buffer.End);
            await secure.Output.CompleteAsync(new IOException("the receiver's disk failed")); // Disconnect (error)
        });

        ToolResult sent = await RunAsync("send", "big.bin", forged.Address, "--trust", forged.Key.PublicKey.ToString());
        await forged.Running.Within();

        AssertFails(sent, 1, $"{forged.Address} ended the connection with an error without answering: it failed or was stopped during the transfer", "or it refused this client");
    }

    [Fact]
    public async Task AMalformedDisconnectIsSaidToBeOneNotAFailureOrARefusal()
    {
        // A receiver that took the whole file and sent a Disconnect too short to hold its error flag. The session counts
        // it as a failure, and the sender said the receiver "failed or was stopped ... or it refused this client".
        byte[] file = new byte[100];
        File.WriteAllBytes(Path.Combine(Dir, "small.bin"), file);
        using ForgedReceiver forged = ForgedReceiver.Start(async (stream, socket) =>
        {
            int header = $"OSSUARY-FILE/1 {file.Length} {Convert.ToBase64String("small.bin"u8)}\n".Length;
            await stream.ReadExactlyAsync(new byte[header + file.Length + 32]); // the header, the file and its hash
            await socket.SendAsync(new byte[] { 0, 2, 0, 0, 0, 0x10, 0, 0, 0, 0 }); // Disconnect, a body of 2 bytes (zeros)
            try
            {
                while (await socket.ReceiveAsync(new byte[256]) > 0) // until the sender closes
                {
                }
            }
            catch (SocketException)
            {
                // the sender's reset is a close too
            }
        }, leaveInnerStreamOpen: true);

        ToolResult sent = await RunAsync("send", "small.bin", forged.Address, "--trust", forged.Key.PublicKey.ToString());
        await forged.Running.Within();

        AssertFails(sent, 1, $"{forged.Address} ended the connection with a malformed Disconnect (2 bytes of body where 4 are due)");
        Assert.DoesNotContain("refused", sent.Stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// A receiver on 127.0.0.1 that takes one connection and does what a test has it do; <see cref="Start"/>
    /// first authenticates as an unauthenticated server over an <see cref="OssuaryStream"/>.
    /// </summary>
    private sealed class ForgedReceiver : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

        private ForgedReceiver() => _listener.Start();

        public OssuaryIdentity Key { get; } = OssuaryIdentity.Generate();

        public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        /// <summary>Completes when the receiver has done its part (and throws what it threw).</summary>
        public Task Running { get; private set; } = Task.CompletedTask;

        /// <summary>Given the accepted socket and the receiver's key, <paramref name="behave"/> does the rest.</summary>
        public static ForgedReceiver StartRaw(Func<Socket, OssuaryIdentity, Task> behave)
        {
            var receiver = new ForgedReceiver();
            receiver.Running = Task.Run(async () =>
            {
                using Socket socket = await receiver._listener.AcceptSocketAsync();
                await behave(socket, receiver.Key);
            });
            return receiver;
        }

        /// <summary><paramref name="behave"/> runs on the authenticated stream (and its socket); the stream is disposed after it.</summary>
        public static ForgedReceiver Start(Func<OssuaryStream, Socket, Task> behave, bool leaveInnerStreamOpen = false) =>
            StartRaw(async (socket, key) =>
            {
                await using var stream = new OssuaryStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen);
                await stream.AuthenticateAsServerAsync(new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, Identity = key });
                await behave(stream, socket);
            });

        public void Dispose()
        {
            _listener.Dispose();
            Key.Dispose();
        }
    }
}
