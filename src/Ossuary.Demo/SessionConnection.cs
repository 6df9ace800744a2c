using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Demo;

/// <summary>
/// One side of a demo connection: a connected TCP socket driving a sans-IO <see cref="OssuarySession"/>.
/// Bytes from the socket go into <see cref="OssuarySession.Receive"/>; whatever the session wants
/// to say (handshake, Reset, Disconnect) goes back out after every call. Owns both.
/// </summary>
internal sealed class SessionConnection(Socket socket, OssuarySession session) : IDisposable
{
    // Receive consumes at most one packet and refuses an oversized header before its body
    // arrives, so room for one largest packet is all the buffering a side ever needs.
    private readonly byte[] _input = new byte[OssuarySession.MaxPacketLength];
    private readonly ArrayBufferWriter<byte> _output = new();
    private readonly ArrayBufferWriter<byte> _plaintext = new();
    private int _buffered;

    public OssuarySession Session { get; } = session;

    /// <summary>Packets this side has written through WriteHandshake (handshake, Reset, Disconnect).</summary>
    public int HandshakePacketsSent { get; private set; }

    /// <summary>
    /// Runs the handshake until this side is established. A client whose server key is not
    /// trusted asks <paramref name="trustOnFirstUse"/>; without it, or if it says no, the client gives up.
    /// </summary>
    public async Task HandshakeAsync(Func<OssuaryPublicKey, bool>? trustOnFirstUse, CancellationToken ct)
    {
        await FlushAsync(ct); // a client speaks first: its ClientHandshake is already pending
        while (!Session.IsEstablished)
        {
            OssuaryReceiveResult result = await NextResultAsync(ct);
            switch (result.Status)
            {
                case OssuaryReceiveStatus.UntrustedServer:
                    OssuaryPublicKey serverKey = Session.RemotePublicKey!;
                    if (trustOnFirstUse?.Invoke(serverKey) != true)
                    {
                        Session.Disconnect(error: true);
                        await FlushAsync(ct);
                        throw new OssuaryException(OssuaryErrorReason.UntrustedServer);
                    }

                    Session.AddAuthorizedKey(serverKey); // resumes the paused handshake
                    await FlushAsync(ct);
                    break;
                case OssuaryReceiveStatus.Closed:
                    throw new OssuaryException(result.Reason);
                default:
                    // Handshake progress, or a Reset: before any application data a re-handshake
                    // loses nothing, and the session has already queued the packets for it.
                    break;
            }
        }
    }

    public async Task SendAsync(string text, CancellationToken ct)
    {
        Session.WriteData(Encoding.UTF8.GetBytes(text), _output);
        await FlushAsync(ct);
    }

    /// <summary>The next message, or null once the peer has closed the connection cleanly.</summary>
    public async Task<string?> ReceiveAsync(CancellationToken ct)
    {
        while (true)
        {
            OssuaryReceiveResult result = await NextResultAsync(ct);
            switch (result.Status)
            {
                case OssuaryReceiveStatus.Data:
                    string text = Encoding.UTF8.GetString(_plaintext.WrittenSpan);
                    _plaintext.Clear();
                    return text;
                case OssuaryReceiveStatus.Closed when result.Reason == OssuaryErrorReason.ConnectionClosed:
                    return null;
                case OssuaryReceiveStatus.Reset or OssuaryReceiveStatus.Closed:
                    // Once data has flowed a Reset cannot be absorbed: messages in flight would be lost.
                    throw new OssuaryException(result.Reason);
            }
        }
    }

    /// <summary>Closes cleanly: sends Disconnect, then waits for the peer to hang up.</summary>
    public async Task CloseAsync(CancellationToken ct)
    {
        Session.Disconnect(error: false);
        await FlushAsync(ct);
        socket.Shutdown(SocketShutdown.Send);

        // Read (and ignore) the peer's answer until it hangs up, so its last packet lands in a
        // live socket instead of drawing a TCP RST from a closed one.
        while (await socket.ReceiveAsync(_input, SocketFlags.None, ct) > 0)
        {
        }
    }

    /// <summary>Closes the socket; the peer sees the end of the stream.</summary>
    public void HangUp() => socket.Dispose();

    public void Dispose()
    {
        socket.Dispose();
        Session.Dispose(); // zeroes the session key and ephemeral secrets
    }

    /// <summary>Feeds buffered bytes to the session until it reports something other than "need more".</summary>
    private async Task<OssuaryReceiveResult> NextResultAsync(CancellationToken ct)
    {
        while (true)
        {
            var input = new ReadOnlySequence<byte>(_input, 0, _buffered);
            OssuaryReceiveResult result = Session.Receive(input, _plaintext, out SequencePosition consumed, out _);
            int used = (int)input.GetOffset(consumed);
            _input.AsSpan(used, _buffered - used).CopyTo(_input);
            _buffered -= used;
            await FlushAsync(ct); // after every Receive, the session may have an answer to send
            if (result.Status != OssuaryReceiveStatus.NeedMoreData)
            {
                return result;
            }

            // While the session waits for a handshake packet, wake up when its timeout is due so
            // the next Receive notices it and resets; a silent peer must not stall us forever.
            using var wake = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (Session.HandshakeTimeRemaining is TimeSpan left)
            {
                wake.CancelAfter(left + TimeSpan.FromMilliseconds(1));
            }

            int read;
            try
            {
                read = await socket.ReceiveAsync(_input.AsMemory(_buffered), SocketFlags.None, wake.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                continue;
            }

            if (read == 0)
            {
                throw new OssuaryException(OssuaryErrorReason.Truncated);
            }

            _buffered += read;
        }
    }

    /// <summary>Writes every packet the session has pending (WriteHandshake until it returns 0) and sends them.</summary>
    private async Task FlushAsync(CancellationToken ct)
    {
        while (Session.WriteHandshake(_output) > 0)
        {
            HandshakePacketsSent++;
        }

        ReadOnlyMemory<byte> pending = _output.WrittenMemory;
        while (!pending.IsEmpty)
        {
            pending = pending[await socket.SendAsync(pending, SocketFlags.None, ct)..];
        }

        _output.ResetWrittenCount();
    }
}
