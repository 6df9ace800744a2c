using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Geralt;

namespace Ossuary.Pipelines;

/// <summary>
/// A host's long-term Ed25519 identity: the 32-byte secret seed the original library stores,
/// and the public key derived from it. The secret lives in unmanaged memory and is zeroed on
/// <see cref="Dispose"/>; it never appears in <see cref="ToString"/> or in any exception.
/// Thread-safe except <see cref="Dispose"/>: one identity may sign for many connections at once; dispose it after them.
/// </summary>
public sealed unsafe class OssuaryIdentity : IDisposable
{
    /// <summary>Size of the secret seed in bytes.</summary>
    public const int SeedSize = KeyHex.KeySize;

    // seed (32) followed by the public key (32): libsodium's expanded secret key layout.
    private const int SecretKeySize = 64;

    private byte* _secretKey;

    private OssuaryIdentity(ReadOnlySpan<byte> seed)
    {
        _secretKey = (byte*)NativeMemory.AllocZeroed(SecretKeySize);
        Span<byte> publicKey = stackalloc byte[OssuaryPublicKey.Size];
        Ed25519.GenerateKeyPair(publicKey, SecretKey, seed);
        PublicKey = new OssuaryPublicKey(publicKey);
    }

    /// <summary>The public half, which peers put on their allow-lists.</summary>
    public OssuaryPublicKey PublicKey { get; }

    private Span<byte> SecretKey
    {
        get
        {
            ObjectDisposedException.ThrowIf(_secretKey == null, this);
            return new Span<byte>(_secretKey, SecretKeySize);
        }
    }

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
    public bool TryFormatSeedHex(Span<char> destination, out int charsWritten) =>
        Convert.TryToHexStringLower(SecretKey[..SeedSize], destination, out charsWritten);

    /// <summary>Copies the 32-byte secret seed. Handle the result as a secret.</summary>
    public void CopySeedTo(Span<byte> destination) => SecretKey[..SeedSize].CopyTo(destination);

    /// <summary>Signs <paramref name="message"/> into a 64-byte <paramref name="signature"/>.</summary>
    internal void Sign(Span<byte> signature, ReadOnlySpan<byte> message) => Ed25519.Sign(signature, message, SecretKey);

    /// <summary>Names the public key only.</summary>
    public override string ToString() => $"OssuaryIdentity({PublicKey})";

    /// <summary>Zeroes and frees the secret. Do not dispose an identity that sessions are still using.</summary>
    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the secret of an identity nobody disposed.</summary>
    ~OssuaryIdentity() => Free();

    private void Free()
    {
        byte* secret = _secretKey;
        if (secret != null)
        {
            _secretKey = null;
            CryptographicOperations.ZeroMemory(new Span<byte>(secret, SecretKeySize));
            NativeMemory.Free(secret);
        }
    }
}
