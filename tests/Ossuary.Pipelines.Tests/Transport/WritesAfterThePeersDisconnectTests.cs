using System.IO.Pipelines;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Writes made once the peer's Disconnect has ended the connection return a completed
/// <see cref="FlushResult"/> at once; they must also hold no memory, as a <see cref="Pipe"/> whose
/// reader has completed holds none (its Advance does nothing).
/// </summary>
public class WritesAfterThePeersDisconnectTests
{
    [Fact]
    public Task WritesAfterThePeersDisconnectKeepNoBytesWhileTheOutputIsStuckOnThatPeer() => Run(async () =>
    {
        // A peer that says goodbye and then reads nothing more (its application never reads, so its
        // input is full), its socket left open: our output stays stuck sending to it. Writes after the
        // Disconnect returned completed without waiting for room and without committing, so every byte
        // of them piled up in the output's memory: an application that writes through Output.AsStream()
        // (which ignores IsCompleted) grew it without bound.
        using var serverKey = OssuaryIdentity.Generate();
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using NetworkStream serverSocket = serverSide;
        using NetworkStream clientSocket = clientSide;
        var clientOptions = new OssuaryClientOptions();
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(
            new StreamDuplexPipe(serverSide, leaveOpen: true, mayStopReading: false),
            new OssuaryServerOptions { Identity = serverKey, Mode = OssuaryServerMode.Unauthenticated });
        await using OssuaryDuplexPipe client = await OssuaryDuplexPipe.ConnectAsync(new StreamDuplexPipe(clientSide, leaveOpen: true, mayStopReading: false), clientOptions).Within();
        await using OssuaryDuplexPipe server = await accepting.Within();

        // More than the peer's input and both sockets hold: the output loop sends it and waits there.
        Assert.False((await client.Output.WriteAsync(new byte[32 << 20]).AsTask().Within()).IsCompleted);
        await server.Output.CompleteAsync(); // Disconnect
        Assert.Empty(await PipeReads.ReadToEndAsync(client.Input).Within()); // the clean end: the connection is over

        Stream writes = client.Output.AsStream();
        byte[] chunk = new byte[1 << 20];
        for (int i = 0; i < 64; i++)
        {
            await writes.WriteAsync(chunk).AsTask().Within();
        }

        Assert.True((await client.Output.WriteAsync(chunk).AsTask().Within()).IsCompleted);
        Assert.True(client.Output.UnflushedBytes <= chunk.Length, $"{client.Output.UnflushedBytes} bytes written after the end are held");
    });

    private static Task Run(Func<Task> test) => test().Within();
}
