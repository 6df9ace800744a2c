using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Demo;

/// <summary>
/// A client and a server session joined by a real TCP connection to ourselves on 127.0.0.1, on a
/// port the OS picks.
/// </summary>
internal sealed class LoopbackPair(SessionConnection client, SessionConnection server) : IDisposable
{
    public SessionConnection Client { get; } = client;

    public SessionConnection Server { get; } = server;

    public static async Task<LoopbackPair> ConnectAsync(OssuarySessionOptions clientOptions, OssuarySessionOptions serverOptions, CancellationToken ct)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);

        var clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            ValueTask<Socket> accepting = listener.AcceptAsync(ct);
            await clientSocket.ConnectAsync(listener.LocalEndPoint!, ct);
            Socket serverSocket = await accepting;
            Console.WriteLine($"connected over TCP: {clientSocket.LocalEndPoint} -> {serverSocket.LocalEndPoint}");

            // Handshake packets are small and answer one another; without NoDelay, Nagle's algorithm
            // holds a second small write (ClientAuthentication, then the first message) until the
            // peer's delayed ACK, adding tens of milliseconds.
            clientSocket.NoDelay = true;
            serverSocket.NoDelay = true;
            return new LoopbackPair(
                new SessionConnection(clientSocket, new OssuarySession(clientOptions)),
                new SessionConnection(serverSocket, new OssuarySession(serverOptions)));
        }
        catch
        {
            clientSocket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Awaits what both sides are doing. If one side fails, both sockets are closed at once, so the
    /// other cannot wait forever for a peer that is gone, and the first failure is the one reported.
    /// </summary>
    public async Task RunAsync(Task clientWork, Task serverWork)
    {
        Task first = await Task.WhenAny(clientWork, serverWork);
        if (!first.IsCompletedSuccessfully)
        {
            Client.HangUp();
            Server.HangUp();
            await first;
        }

        await Task.WhenAll(clientWork, serverWork);
    }

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
    }
}
