using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Ossuary.Pipelines.Crypto;

/// <summary>
/// ChaCha20-Poly1305 (RFC 8439, empty associated data) under one session key, through whichever
/// implementation is faster for the size (see benchmarks/README.md, AEAD): libsodium (Geralt) up to
/// <see cref="SmallRecordLimit"/> bytes, where each BCL call's fixed cost of about 0.8 µs dominates,
/// and the BCL (OpenSSL, about twice as fast per byte) above it. Both produce the same bytes.
/// Where OpenSSL cannot be loaded (<see cref="ChaCha20Poly1305.IsSupported"/> is false: a C program
/// using libossuary on a machine without libssl, such as a slim container image) libsodium takes
/// every record, so large records work wherever the handshake does. The C library turns the BCL
/// off altogether (<see cref="OpenSslSwitch"/>): it is a guest in a C program, and loading OpenSSL
/// there would load the machine's openssl.cnf and its providers into the host, and a libssl without
/// the symbols the BCL requires makes the BCL abort() the whole process.
/// The BCL contexts are made on the first large record: handshake blobs and small records never
/// need them, so a connection that stays small (or idle) holds no OpenSSL cipher context. Sealing
/// and opening get separate BCL instances because an instance holds one native context, and an
/// adapter seals and opens from different threads; each is made by the side that uses it.
/// </summary>
internal sealed class RecordCipher : IDisposable
{
    public const int KeySize = 32;
    public const int TagSize = 16;

    /// <summary>
    /// Plaintexts up to this length go through libsodium. Measured: Geralt 0.3 µs against the BCL's
    /// 0.93 µs at 64 B, 0.86 against 0.99 µs at 1 KiB, 10.6 against 5.2 µs at 16 KiB: the lines cross near 1.4 KiB.
    /// </summary>
    internal const int SmallRecordLimit = 1536;

    /// <summary>
    /// The runtime switch that keeps every record on libsodium when set to false
    /// (src/Ossuary.Native sets it, trimmed to a constant there, so the C library never touches OpenSSL).
    /// </summary>
    internal const string OpenSslSwitch = "Ossuary.Pipelines.RecordCipher.UseOpenSsl";

    private readonly byte[] _key = GC.AllocateUninitializedArray<byte>(KeySize, pinned: true);
    private ChaCha20Poly1305? _seal;
    private ChaCha20Poly1305? _open;
    private bool _disposed;

    public RecordCipher(ReadOnlySpan<byte> key)
    {
        key.CopyTo(_key);
    }

    /// <summary>Encrypts; <paramref name="ciphertext"/> may be <paramref name="plaintext"/> itself (in place).</summary>
    /// <exception cref="ObjectDisposedException">The cipher was disposed: its key is gone, and sealing under the zeroed key would publish the plaintext.</exception>
    public void Seal(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (UsesOpenSsl(plaintext.Length))
        {
            (_seal ??= new ChaCha20Poly1305(_key)).Encrypt(nonce, plaintext, ciphertext, tag);
        }
        else if (Adjacent(ciphertext, tag))
        {
            // The wire layout is ciphertext · tag, libsodium's combined layout: seal straight into it.
            Geralt.ChaCha20Poly1305.Encrypt(Combined(ciphertext, tag), plaintext, nonce, _key);
        }
        else
        {
            Span<byte> sealedRecord = stackalloc byte[plaintext.Length + TagSize];
            Geralt.ChaCha20Poly1305.Encrypt(sealedRecord, plaintext, nonce, _key);
            sealedRecord[..plaintext.Length].CopyTo(ciphertext);
            sealedRecord[plaintext.Length..].CopyTo(tag);
        }
    }

    /// <summary>
    /// Checks the tag and decrypts; <paramref name="plaintext"/> may be <paramref name="ciphertext"/>
    /// itself. On a bad tag the output is zeroed and nothing else happens: a forged frame costs one
    /// tag check (and, both libraries being what they are, one caught exception, after which the session resets).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cipher was disposed.</exception>
    public bool TryOpen(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            if (UsesOpenSsl(ciphertext.Length))
            {
                (_open ??= new ChaCha20Poly1305(_key)).Decrypt(nonce, ciphertext, tag, plaintext);
            }
            else if (Adjacent(ciphertext, tag))
            {
                Geralt.ChaCha20Poly1305.Decrypt(plaintext, Combined(ciphertext, tag), nonce, _key);
            }
            else
            {
                Span<byte> sealedRecord = stackalloc byte[ciphertext.Length + TagSize];
                ciphertext.CopyTo(sealedRecord);
                tag.CopyTo(sealedRecord[ciphertext.Length..]);
                Geralt.ChaCha20Poly1305.Decrypt(plaintext, sealedRecord, nonce, _key);
            }

            return true;
        }
        catch (CryptographicException)
        {
            // AuthenticationTagMismatchException (BCL) derives from it; Geralt throws it directly.
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }
    }

    /// <summary>
    /// Zeroes the key. The session disposes a cipher only under its lock, so no seal or open is
    /// in flight; the flag makes any later use throw rather than run under the zeroed key.
    /// </summary>
    public void Dispose()
    {
        _disposed = true;
        CryptographicOperations.ZeroMemory(_key);
        _seal?.Dispose();
        _open?.Dispose();
    }

    /// <summary>
    /// Whether the BCL's OpenSSL is allowed in this process; read before <see cref="ChaCha20Poly1305.IsSupported"/>,
    /// which loads it. Read once: <see cref="AppContext.TryGetSwitch"/> takes a process-wide lock, too much for every record.
    /// </summary>
    [FeatureSwitchDefinition(OpenSslSwitch)]
    private static bool OpenSslAllowed { get; } = !AppContext.TryGetSwitch(OpenSslSwitch, out bool allowed) || allowed;

    /// <summary>Whether a record of <paramref name="length"/> bytes goes through the BCL (OpenSSL).</summary>
    private static bool UsesOpenSsl(int length) =>
        length > SmallRecordLimit && OpenSslAllowed && ChaCha20Poly1305.IsSupported;

    /// <summary>True when <paramref name="second"/> starts where <paramref name="first"/> ends (two slices of one packet).</summary>
    private static bool Adjacent(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second) =>
        second.Length == TagSize
        && Unsafe.AreSame(ref Unsafe.Add(ref MemoryMarshal.GetReference(first), first.Length), ref MemoryMarshal.GetReference(second));

    private static Span<byte> Combined(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second) =>
        MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(first), first.Length + second.Length);
}
