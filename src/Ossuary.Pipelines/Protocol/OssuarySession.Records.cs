using System.Buffers;
using Ossuary.Pipelines.Crypto;

namespace Ossuary.Pipelines.Protocol;

public sealed partial class OssuarySession
{
    /// <summary>
    /// Seals <paramref name="plaintext"/> (at most <see cref="MaxPlaintextLength"/> bytes) into one
    /// EncryptedData packet written straight into <paramref name="output"/>'s memory.
    /// </summary>
    /// <returns>The packet's length: the plaintext's plus <see cref="DataPacketOverhead"/>.</returns>
    /// <exception cref="InvalidOperationException">The session is not established.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The plaintext is longer than <see cref="MaxPlaintextLength"/>.</exception>
    /// <exception cref="Exception">
    /// Whatever <paramref name="output"/> throws. From <c>GetSpan</c>: nothing was sealed and the session is as
    /// it was. From <c>Advance</c>: the packet was sealed and counts as sent, so its nonce is never used
    /// again (a second packet sealed under it would expose both plaintexts), but it is lost. The next
    /// packet then carries the message id after the lost one, and the peer resets the session on it
    /// (<see cref="OssuaryErrorReason.MessageIdMismatch"/>): treat an exception from <c>Advance</c> as the
    /// end of the session, and <see cref="Disconnect"/> it.
    /// </exception>
    public int WriteData(ReadOnlySpan<byte> plaintext, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        lock (_gate)
        {
            return SealRecord(plaintext, output);
        }
    }

    /// <summary>
    /// Seals a plaintext that may span segments. A single segment is sealed straight from its
    /// memory; a longer sequence is copied once into the packet and sealed there in place.
    /// </summary>
    /// <inheritdoc cref="WriteData(ReadOnlySpan{byte}, IBufferWriter{byte})"/>
    public int WriteData(in ReadOnlySequence<byte> plaintext, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (plaintext.IsSingleSegment)
        {
            lock (_gate)
            {
                return SealRecord(plaintext.FirstSpan, output);
            }
        }

        if (plaintext.Length > MaxPlaintextLength)
        {
            throw PlaintextTooLong(nameof(plaintext), plaintext.Length);
        }

        lock (_gate)
        {
            Span<byte> packet = BeginRecord((int)plaintext.Length, output, out Span<byte> ciphertext, out Span<byte> tag, out RecordCipher cipher);
            plaintext.CopyTo(ciphertext);
            cipher.Seal(_localNonce, ciphertext, ciphertext, tag);
            return EndRecord(packet.Length, output);
        }
    }

    private int SealRecord(ReadOnlySpan<byte> plaintext, IBufferWriter<byte> output)
    {
        Span<byte> packet = BeginRecord(plaintext.Length, output, out Span<byte> ciphertext, out Span<byte> tag, out RecordCipher cipher);
        cipher.Seal(_localNonce, plaintext, ciphertext, tag);
        return EndRecord(packet.Length, output);
    }

    /// <summary>Checks that a record can be sealed now and lays out its packet. Runs under the lock.</summary>
    private Span<byte> BeginRecord(int length, IBufferWriter<byte> output, out Span<byte> ciphertext, out Span<byte> tag, out RecordCipher cipher)
    {
        if (_step != Step.Established || _cipher is null)
        {
            throw new InvalidOperationException($"Data can be sent only on an established session; this one is {CurrentState}.");
        }

        cipher = _cipher;

        if (length > MaxPlaintextLength)
        {
            throw PlaintextTooLong("plaintext", length); // WriteData's parameter: the caller's argument.
        }

        int bodyLength = EncryptedBlob.Overhead + length;
        int packetLength = PacketHeader.Size + bodyLength;
        Span<byte> packet = output.GetSpan(packetLength)[..packetLength];
        new PacketHeader((ushort)bodyLength, _localMessageId, PacketType.EncryptedData).Write(packet);
        EncryptedBlob.WriteHeader(packet[PacketHeader.Size..], length);
        ciphertext = packet.Slice(PacketHeader.Size + EncryptedBlob.HeaderSize, length);
        tag = packet.Slice(PacketHeader.Size + EncryptedBlob.HeaderSize + length, EncryptedBlob.TagSize);
        return packet;
    }

    private int EndRecord(int packetLength, IBufferWriter<byte> output)
    {
        _localMessageId++;
        _localNonce.Increment();
        output.Advance(packetLength);
        return packetLength;
    }

    private static ArgumentOutOfRangeException PlaintextTooLong(string paramName, long length) =>
        new(paramName, length, $"One packet carries at most {MaxPlaintextLength} bytes of plaintext.");

    /// <summary>
    /// Decrypts one EncryptedData body into <paramref name="plaintext"/>'s memory. A ciphertext in
    /// one segment is decrypted from where it lies; one that spans segments is copied once into
    /// the destination and decrypted there in place.
    /// </summary>
    private OssuaryReceiveResult OpenRecord(in ReadOnlySequence<byte> body, IBufferWriter<byte> plaintext)
    {
        Span<byte> blobHeader = stackalloc byte[EncryptedBlob.HeaderSize];
        if (body.Length < EncryptedBlob.Overhead)
        {
            return BeginReset(OssuaryErrorReason.UnexpectedPacketSize, initiator: true);
        }

        body.Slice(0, EncryptedBlob.HeaderSize).CopyTo(blobHeader);
        if (!EncryptedBlob.TryReadHeader(blobHeader, (int)body.Length, out int length))
        {
            return BeginReset(OssuaryErrorReason.UnexpectedPacketSize, initiator: true);
        }

        ReadOnlySequence<byte> ciphertext = body.Slice(EncryptedBlob.HeaderSize, length);
        Span<byte> destination = plaintext.GetSpan(length)[..length];
        bool opened;
        if (body.IsSingleSegment)
        {
            // Ciphertext and tag side by side, as the cipher takes them best.
            ReadOnlySpan<byte> blob = body.FirstSpan;
            opened = _cipher!.TryOpen(_remoteNonce, blob.Slice(EncryptedBlob.HeaderSize, length), blob.Slice(EncryptedBlob.HeaderSize + length, EncryptedBlob.TagSize), destination);
        }
        else
        {
            Span<byte> tag = stackalloc byte[EncryptedBlob.TagSize];
            body.Slice(EncryptedBlob.HeaderSize + length).CopyTo(tag);
            if (ciphertext.IsSingleSegment)
            {
                opened = _cipher!.TryOpen(_remoteNonce, ciphertext.FirstSpan, tag, destination);
            }
            else
            {
                ciphertext.CopyTo(destination);
                opened = _cipher!.TryOpen(_remoteNonce, destination, tag, destination);
            }
        }

        if (!opened)
        {
            return BeginReset(OssuaryErrorReason.DecryptionFailed, initiator: true);
        }

        // The writer first: if it throws, the packet was not taken, and the nonce and id must still
        // expect it (advanced, a retry of the same packet reset the session for a message id gap).
        plaintext.Advance(length);
        _remoteNonce.Increment();
        _remoteMessageId++;
        return OssuaryReceiveResult.Data(length);
    }
}
