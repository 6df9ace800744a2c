using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Ossuary.Pipelines;

/// <summary>
/// A 32-byte Ed25519 public key identifying an Ossuary host. Equality is constant-time, so a
/// lookup in an allow-list does not reveal through timing how close a presented key came.
/// Parsable from 64 hex characters (<see cref="ISpanParsable{TSelf}"/>, and a <see cref="TypeConverter"/>
/// so that configuration binds <c>Ossuary__AuthorizedClientKeys__0=&lt;hex&gt;</c>).
/// </summary>
[TypeConverter(typeof(OssuaryPublicKeyConverter))]
public sealed class OssuaryPublicKey : IEquatable<OssuaryPublicKey>, ISpanFormattable, ISpanParsable<OssuaryPublicKey>
{
    /// <summary>Size of a public key in bytes.</summary>
    public const int Size = KeyHex.KeySize;

    // Inline, not an array: a connection holds its peer's key for its whole life.
    private readonly Bytes32 _bytes;

    /// <summary>Creates a key from its 32 raw bytes.</summary>
    /// <exception cref="OssuaryException">The span is not 32 bytes long (<see cref="OssuaryErrorReason.InvalidKeySize"/>).</exception>
    public OssuaryPublicKey(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new OssuaryException(OssuaryErrorReason.InvalidKeySize, KeyHex.SizeMessage("A public key", bytes.Length));
        }

        bytes.CopyTo(_bytes);
    }

    /// <summary>
    /// The key an anonymous client sends: the Ed25519 encoding of the identity point,
    /// <c>01</c> followed by 31 zero bytes. An unauthenticated server reports it as the client's key.
    /// </summary>
    public static OssuaryPublicKey Anonymous { get; } = CreateAnonymous();

    /// <summary>The key's raw bytes.</summary>
    public ReadOnlySpan<byte> Span => _bytes;

    /// <summary>Whether this is <see cref="Anonymous"/>.</summary>
    public bool IsAnonymous => Equals(Anonymous);

    /// <summary>
    /// <see cref="Anonymous"/> or all zeros: keys no peer can prove (the handshake refuses both), so an
    /// allow-list or trusted-key entry holding one matches nobody. The options and the trust files
    /// refuse such a key; an application's own allow-list (an <c>AuthorizeClient</c> callback's) should too.
    /// </summary>
    public bool IsUnprovable => IsAnonymous || System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(_bytes, stackalloc byte[Size]);

    /// <summary>Parses 64 hex characters.</summary>
    /// <exception cref="FormatException">The text is not 64 hex characters.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="hex"/> is null.</exception>
    public static OssuaryPublicKey Parse(string hex)
    {
        ArgumentNullException.ThrowIfNull(hex);
        return TryParse(hex, out OssuaryPublicKey? key)
            ? key
            : throw new FormatException("A public key is 64 hex characters (32 bytes).");
    }

    /// <summary>Parses 64 hex characters; false if the text is anything else.</summary>
    public static bool TryParse(ReadOnlySpan<char> hex, [NotNullWhen(true)] out OssuaryPublicKey? key)
    {
        Span<byte> raw = stackalloc byte[Size];
        if (!KeyHex.TryDecode(hex, raw))
        {
            key = null;
            return false;
        }

        key = new OssuaryPublicKey(raw);
        return true;
    }

    /// <summary>Parses 64 hex characters.</summary>
    /// <exception cref="FormatException">The text is not 64 hex characters.</exception>
    public static OssuaryPublicKey Parse(ReadOnlySpan<char> s, IFormatProvider? provider) =>
        TryParse(s, out OssuaryPublicKey? key) ? key : throw new FormatException("A public key is 64 hex characters (32 bytes).");

    /// <inheritdoc cref="Parse(ReadOnlySpan{char}, IFormatProvider?)"/>
    /// <exception cref="ArgumentNullException"><paramref name="s"/> is null.</exception>
    public static OssuaryPublicKey Parse(string s, IFormatProvider? provider)
    {
        ArgumentNullException.ThrowIfNull(s);
        return Parse(s.AsSpan(), provider);
    }

    /// <summary>Parses 64 hex characters; false if the text is anything else.</summary>
    public static bool TryParse(ReadOnlySpan<char> s, IFormatProvider? provider, [MaybeNullWhen(false)] out OssuaryPublicKey result) =>
        TryParse(s, out result);

    /// <summary>Parses 64 hex characters; false if the text is null or anything else.</summary>
    public static bool TryParse([NotNullWhen(true)] string? s, IFormatProvider? provider, [MaybeNullWhen(false)] out OssuaryPublicKey result)
    {
        result = null;
        return s is not null && TryParse(s.AsSpan(), out result);
    }

    /// <summary>Copies the raw bytes into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="Size"/>; nothing is copied.</exception>
    public void CopyTo(Span<byte> destination) => Span.CopyTo(destination);

    /// <inheritdoc />
    public bool Equals([NotNullWhen(true)] OssuaryPublicKey? other) =>
        other is not null && CryptographicOperations.FixedTimeEquals(_bytes, other._bytes);

    /// <summary>Constant-time comparison with raw key bytes.</summary>
    public bool Equals(ReadOnlySpan<byte> other) => CryptographicOperations.FixedTimeEquals(_bytes, other);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is OssuaryPublicKey other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => BitConverter.ToInt32(Span);

    /// <summary>The key as 64 lowercase hex characters (public keys are not secret).</summary>
    public override string ToString() => Convert.ToHexStringLower(Span);

    /// <inheritdoc />
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <inheritdoc />
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider) =>
        Convert.TryToHexStringLower(Span, destination, out charsWritten);

    /// <summary>Constant-time equality.</summary>
    public static bool operator ==(OssuaryPublicKey? left, OssuaryPublicKey? right) =>
        left is null ? right is null : left.Equals(right);

    /// <summary>Constant-time inequality.</summary>
    public static bool operator !=(OssuaryPublicKey? left, OssuaryPublicKey? right) => !(left == right);

    private static OssuaryPublicKey CreateAnonymous()
    {
        Span<byte> raw = stackalloc byte[Size];
        raw[0] = 1;
        return new OssuaryPublicKey(raw);
    }
}
