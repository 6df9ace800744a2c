namespace Ossuary.Pipelines;

/// <summary>Hex parsing shared by the key types: 64 characters, either case, no separators.</summary>
internal static class KeyHex
{
    public const int KeySize = 32;

    public static bool TryDecode(ReadOnlySpan<char> hex, Span<byte> destination)
    {
        hex = hex.Trim();
        if (hex.Length != KeySize * 2)
        {
            return false;
        }

        return Convert.FromHexString(hex, destination, out _, out int written) == System.Buffers.OperationStatus.Done
            && written == KeySize;
    }

    public static string SizeMessage(string what, int length) =>
        $"{what} must be {KeySize} bytes (64 hex characters); got {length}.";
}
