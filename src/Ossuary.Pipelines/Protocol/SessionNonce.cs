using System.Runtime.CompilerServices;

namespace Ossuary.Pipelines.Protocol;

/// <summary>
/// A side's 12-byte session nonce. It counts as one 96-bit <b>big-endian</b> integer, so the
/// increment carries from the last byte towards the first (libsodium's increment is
/// little-endian and would break compatibility).
/// </summary>
[InlineArray(Size)]
internal struct SessionNonce
{
    public const int Size = 12;

    private byte _element0;

    public static SessionNonce From(ReadOnlySpan<byte> source)
    {
        SessionNonce nonce = default;
        source[..Size].CopyTo(nonce);
        return nonce;
    }

    public void Increment()
    {
        Span<byte> bytes = this;
        for (int i = Size - 1; i >= 0; i--)
        {
            if (++bytes[i] != 0)
            {
                return;
            }
        }
    }
}
