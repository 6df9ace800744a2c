using System.Security.Cryptography;

namespace Ossuary.Pipelines.Crypto;

/// <summary>
/// ChaCha20-Poly1305 (RFC 8439, empty associated data) under one session key. The BCL's
/// implementation is used rather than Geralt's because it measured faster on the data path
/// (see benchmarks/README.md). Sealing and opening get separate instances because an instance
/// holds one native context, and an adapter seals and opens from different threads.
/// </summary>
internal sealed class RecordCipher : IDisposable
{
    public const int KeySize = 32;
    public const int TagSize = 16;

    private readonly ChaCha20Poly1305 _seal;
    private readonly ChaCha20Poly1305 _open;

    public RecordCipher(ReadOnlySpan<byte> key)
    {
        _seal = new ChaCha20Poly1305(key);
        _open = new ChaCha20Poly1305(key);
    }

    /// <summary>Encrypts; <paramref name="ciphertext"/> may be <paramref name="plaintext"/> itself (in place).</summary>
    public void Seal(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag) =>
        _seal.Encrypt(nonce, plaintext, ciphertext, tag);

    /// <summary>
    /// Checks the tag and decrypts; <paramref name="plaintext"/> may be <paramref name="ciphertext"/>
    /// itself. On a bad tag the output is zeroed and nothing else happens: a forged frame costs one
    /// tag check (and, the BCL being what it is, one caught exception, after which the session resets).
    /// </summary>
    public bool TryOpen(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        try
        {
            _open.Decrypt(nonce, ciphertext, tag, plaintext);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }
    }

    public void Dispose()
    {
        _seal.Dispose();
        _open.Dispose();
    }
}
