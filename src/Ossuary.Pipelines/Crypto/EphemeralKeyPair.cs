using System.Security.Cryptography;
using Geralt;

namespace Ossuary.Pipelines.Crypto;

/// <summary>
/// One generation of a side's X25519 session material. The secret lives in a pinned array so
/// the GC never leaves copies of it behind, and is zeroed (<see cref="Spend"/>) as soon as the packet
/// that carried the peer's key has been read.
/// </summary>
internal sealed class EphemeralKeyPair : IDisposable
{
    public const int KeySize = 32;

    private readonly byte[] _secret = GC.AllocateUninitializedArray<byte>(KeySize, pinned: true);
    private readonly byte[] _public = new byte[KeySize];

    /// <summary>False once the secret has been used (and zeroed) or disposed, until the next <see cref="Regenerate"/>.</summary>
    private bool _fresh;
    private bool _disposed;

    public ReadOnlySpan<byte> PublicKey => _public;

    /// <summary>Draws a new secret (the raw 32 bytes; X25519 clamps them itself, as the original does).</summary>
    public void Regenerate(RandomSource random)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        random.Fill(_secret);
        X25519.ComputePublicKey(_public, _secret);
        _fresh = true;
    }

    /// <summary>
    /// The raw X25519 output is the session key (the protocol has no KDF). An all-zero result means
    /// the peer sent a low-order point; the original accepts it, we refuse it. The secret stays until
    /// <see cref="Spend"/>: a packet whose reading fails after the agreement (no memory for the cipher:
    /// the C library's full heap, whose call returns -1 having consumed nothing) is read again with it.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// This generation's secret was spent (or disposed): it is zeroed, and an agreement with the
    /// known all-zero scalar would give a key anyone can compute.
    /// </exception>
    public bool TryAgree(ReadOnlySpan<byte> peerPublicKey, Span<byte> sessionKey)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_fresh)
        {
            throw new InvalidOperationException("This ephemeral key pair has already been used for a key agreement; a reset draws a new one.");
        }

        try
        {
            X25519.ComputeSharedSecret(sessionKey, _secret, peerPublicKey);
        }
        catch (CryptographicException)
        {
            return false;
        }

        return !ConstantTime.IsAllZeros(sessionKey);
    }

    /// <summary>
    /// Zeroes the secret once its agreement has been taken: one agreement per generation, and a reset
    /// draws a new secret. Zeroing only on Dispose kept every connection's secret for its whole life.
    /// </summary>
    public void Spend()
    {
        _fresh = false;
        CryptographicOperations.ZeroMemory(_secret);
    }

    public void Dispose()
    {
        _disposed = true;
        _fresh = false;
        CryptographicOperations.ZeroMemory(_secret);
    }
}
