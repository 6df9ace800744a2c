using Ossuary.Pipelines.Protocol;

namespace Ossuary.Cli.Net;

/// <summary>
/// The plaintext the peer's data packets carry, counted from their headers as the bytes come off the
/// socket, before the session opens them. Compared with what reached stdout, it tells whether anything
/// is still held in this process (read ahead by the transport, or sealed packets the session has not
/// opened), and after our Disconnect, how much the peer sent that the closed session discarded unread.
/// Headers only: a packet the session would reject still counts, which errs towards "not idle" and "lost".
/// </summary>
internal sealed class ArrivedPlaintext
{
    private readonly byte[] _header = new byte[PacketHeader.Size];
    private int _headerFilled;
    private long _bodyLeft;
    private long _plaintext;

    private long _goodbyes;
    private int _malformedDisconnectBody = -1;

    /// <summary>Plaintext bytes in every data packet whose header has arrived.</summary>
    public long Bytes => Interlocked.Read(ref _plaintext);

    /// <summary>
    /// Disconnect and Reset packets whose header has arrived. One that comes once the session is established is the
    /// peer's last word (its close, or its answer to ours): no data packet follows it, so nothing more is to be counted.
    /// </summary>
    public long Goodbyes => Interlocked.Read(ref _goodbyes);

    /// <summary>
    /// The body length of a Disconnect from the peer too short to hold its error flag, or null. The session takes one
    /// for a Disconnect (error), and the tool's words for that (the peer failed, or refused this client) would misname it.
    /// </summary>
    public int? MalformedDisconnectBody => Volatile.Read(ref _malformedDisconnectBody) is >= 0 and int body ? body : null;

    /// <summary>What the peer did, for a message, if its Disconnect was malformed; else null.</summary>
    public string? DescribeMalformedDisconnect(string peer) => MalformedDisconnectBody is { } body
        ? $"{peer} ended the connection with a malformed Disconnect ({body} bytes of body where {OssuarySession.ControlBodySize} are due), "
            + "which is no clean close: it may have failed, and what was in flight either way may not have arrived"
        : null;

    /// <summary>Takes the next bytes read from the socket, in order; called by one reader at a time.</summary>
    public void Observe(ReadOnlySpan<byte> read)
    {
        while (!read.IsEmpty)
        {
            if (_bodyLeft > 0)
            {
                int skipped = (int)Math.Min(_bodyLeft, read.Length);
                _bodyLeft -= skipped;
                read = read[skipped..];
                continue;
            }

            int taken = Math.Min(PacketHeader.Size - _headerFilled, read.Length);
            read[..taken].CopyTo(_header.AsSpan(_headerFilled));
            _headerFilled += taken;
            read = read[taken..];
            if (_headerFilled == PacketHeader.Size)
            {
                _headerFilled = 0;
                PacketHeader header = PacketHeader.Read(_header);
                _bodyLeft = header.BodyLength;
                if (header.Type == PacketType.EncryptedData && header.BodyLength > EncryptedBlob.Overhead)
                {
                    Interlocked.Add(ref _plaintext, header.BodyLength - EncryptedBlob.Overhead);
                }
                else if (header.Type is PacketType.Disconnect or PacketType.Reset)
                {
                    Interlocked.Increment(ref _goodbyes);
                    if (header.Type == PacketType.Disconnect && header.BodyLength < OssuarySession.ControlBodySize)
                    {
                        Volatile.Write(ref _malformedDisconnectBody, header.BodyLength);
                    }
                }
            }
        }
    }
}
