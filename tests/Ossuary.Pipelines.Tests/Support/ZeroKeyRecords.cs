using System.Security.Cryptography;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// What an attacker who knows a side's cleartext nonce can try on a record: opening it with an
/// all-zero key (a key zeroed in place by a dispose that raced the seal).
/// </summary>
internal sealed class ZeroKeyRecords : IDisposable
{
    private readonly ChaCha20Poly1305 _zeroKey = new(new byte[32]);

    /// <summary>
    /// True if the EncryptedData packet opens under the zero key with any nonce the sealing side
    /// could have used: its first generation's nonce (from <paramref name="firstHandshake"/>, plus
    /// one for the ClientAuthentication blob and one per record) or the next generation's (from
    /// <paramref name="nextHandshake"/>, empty if none was written), a few steps either way.
    /// </summary>
    public bool OpensUnderZeroKey(byte[] record, byte[] firstHandshake, byte[] nextHandshake)
    {
        if (Wire.Type(record) != Wire.EncryptedData || record.Length < Wire.HeaderSize + EncryptedBlob.Overhead)
        {
            return false;
        }

        var candidates = new List<SessionNonce>();
        SessionNonce first = NonceOf(firstHandshake);

        // msg_id 0 and 1 were the ClientHandshake and ClientAuthentication; only the latter used a nonce.
        int expected = Wire.MessageId(record) - 1;
        for (int step = Math.Max(0, expected - 3); step <= expected + 3; step++)
        {
            candidates.Add(Advance(first, step));
        }

        if (nextHandshake.Length > 0 && Wire.Type(nextHandshake) == Wire.ClientHandshake)
        {
            // The next generation's nonce as written, and the few values a racing seal could have advanced it past.
            SessionNonce next = NonceOf(nextHandshake);
            for (int step = 0; step <= 4; step++)
            {
                candidates.Add(Advance(next, step));
            }
        }

        ReadOnlySpan<byte> blob = record.AsSpan(Wire.HeaderSize);
        int length = blob.Length - EncryptedBlob.Overhead;
        ReadOnlySpan<byte> ciphertext = blob.Slice(EncryptedBlob.HeaderSize, length);
        ReadOnlySpan<byte> tag = blob.Slice(EncryptedBlob.HeaderSize + length, EncryptedBlob.TagSize);
        byte[] plaintext = new byte[length];
        foreach (SessionNonce nonce in candidates)
        {
            try
            {
                _zeroKey.Decrypt(nonce, ciphertext, tag, plaintext);
                return true;
            }
            catch (CryptographicException)
            {
            }
        }

        return false;
    }

    public void Dispose() => _zeroKey.Dispose();

    private static SessionNonce NonceOf(byte[] handshake) => SessionNonce.From(handshake.AsSpan(Wire.HeaderSize + HandshakeBody.NonceOffset));

    private static SessionNonce Advance(SessionNonce nonce, int steps)
    {
        for (int i = 0; i < steps; i++)
        {
            nonce.Increment();
        }

        return nonce;
    }
}
