using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Geralt;

namespace Ossuary.Pipelines;

/// <summary>
/// A host's long-term Ed25519 identity: the 32-byte secret seed the original library stores,
/// and the public key derived from it. The secret lives in unmanaged memory and is zeroed on
/// <see cref="Dispose"/>; it never appears in <see cref="ToString"/> or in any exception.
/// Thread-safe: one identity may sign for many connections at once. Dispose it after them; a
/// <see cref="Dispose"/> that races a use lets that use finish under the key (and frees the key
/// after it), and every later use throws <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed unsafe class OssuaryIdentity : IDisposable
{
    /// <summary>Size of the secret seed in bytes.</summary>
    public const int SeedSize = KeyHex.KeySize;

    // seed (32) followed by the public key (32): libsodium's expanded secret key layout.
    private const int SecretKeySize = 64;

    // Counted per use (see SecretKeyMemory): a Dispose racing a use frees the key once that use is over.
    private readonly SecretKeyMemory _secretKey = new(SecretKeySize);

    private OssuaryIdentity(ReadOnlySpan<byte> seed)
    {
        Span<byte> publicKey = stackalloc byte[OssuaryPublicKey.Size];
        try
        {
            Ed25519.GenerateKeyPair(publicKey, new Span<byte>((void*)_secretKey.DangerousGetHandle(), SecretKeySize), seed);
        }
        catch
        {
            _secretKey.Dispose();
            throw;
        }

        PublicKey = new OssuaryPublicKey(publicKey);
    }

    /// <summary>The public half, which peers put on their allow-lists.</summary>
    public OssuaryPublicKey PublicKey { get; }

    /// <summary>Makes a new identity from the operating system's secure random generator.</summary>
    public static OssuaryIdentity Generate()
    {
        Span<byte> seed = stackalloc byte[SeedSize];
        try
        {
            SecureRandom.Fill(seed);
            return new OssuaryIdentity(seed);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>Makes an identity from a 32-byte secret seed (the format of the original's key files and C API).</summary>
    /// <exception cref="OssuaryException">The seed is not 32 bytes (<see cref="OssuaryErrorReason.InvalidKeySize"/>).</exception>
    public static OssuaryIdentity FromSeed(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != SeedSize)
        {
            throw new OssuaryException(OssuaryErrorReason.InvalidKeySize, KeyHex.SizeMessage("A secret key", seed.Length));
        }

        return new OssuaryIdentity(seed);
    }

    /// <summary>Makes an identity from a secret seed written as 64 hex characters.</summary>
    /// <exception cref="FormatException">The text is not 64 hex characters; the message does not repeat it.</exception>
    public static OssuaryIdentity ParseSeedHex(ReadOnlySpan<char> hex)
    {
        Span<byte> seed = stackalloc byte[SeedSize];
        try
        {
            return KeyHex.TryDecode(hex, seed)
                ? new OssuaryIdentity(seed)
                : throw new FormatException("A secret key is 64 hex characters (32 bytes).");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>Writes the secret seed as 64 lowercase hex characters, for a key file. Handle the result as a secret.</summary>
    /// <exception cref="ObjectDisposedException">The identity has been disposed.</exception>
    public bool TryFormatSeedHex(Span<char> destination, out int charsWritten)
    {
        Span<byte> secretKey = AcquireSecretKey();
        try
        {
            return Convert.TryToHexStringLower(secretKey[..SeedSize], destination, out charsWritten);
        }
        finally
        {
            _secretKey.DangerousRelease();
        }
    }

    /// <summary>Copies the 32-byte secret seed. Handle the result as a secret.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SeedSize"/>; nothing is copied.</exception>
    /// <exception cref="ObjectDisposedException">The identity has been disposed.</exception>
    public void CopySeedTo(Span<byte> destination)
    {
        Span<byte> secretKey = AcquireSecretKey();
        try
        {
            secretKey[..SeedSize].CopyTo(destination);
        }
        finally
        {
            _secretKey.DangerousRelease();
        }
    }

    /// <summary>Signs <paramref name="message"/> into a 64-byte <paramref name="signature"/>.</summary>
    internal void Sign(Span<byte> signature, ReadOnlySpan<byte> message)
    {
        Span<byte> secretKey = AcquireSecretKey();
        try
        {
            Ed25519.Sign(signature, message, secretKey);
        }
        finally
        {
            _secretKey.DangerousRelease();
        }
    }

    /// <summary>Names the public key only.</summary>
    public override string ToString() => $"OssuaryIdentity({PublicKey})";

    /// <summary>
    /// Zeroes and frees the secret: at once, or, if a signature or copy is under way on another
    /// thread, as soon as it is done. Every use that starts after this throws <see cref="ObjectDisposedException"/>.
    /// Do not dispose an identity that sessions are still using: their handshakes then fail.
    /// </summary>
    public void Dispose() => _secretKey.Dispose();

    /// <summary>True once <see cref="Dispose"/> has been called: a use that starts now throws.</summary>
    internal bool IsDisposed => _secretKey.IsClosed;

    /// <summary>The secret key, held against a racing Dispose until the caller's DangerousRelease.</summary>
    /// <exception cref="ObjectDisposedException">The identity has been disposed.</exception>
    private Span<byte> AcquireSecretKey()
    {
        bool held = false;
        try
        {
            _secretKey.DangerousAddRef(ref held);
        }
        catch (ObjectDisposedException)
        {
            // The handle's own exception names SafeHandle; ours names the identity.
        }

        ObjectDisposedException.ThrowIf(!held, this);
        return new Span<byte>((void*)_secretKey.DangerousGetHandle(), SecretKeySize);
    }
}
