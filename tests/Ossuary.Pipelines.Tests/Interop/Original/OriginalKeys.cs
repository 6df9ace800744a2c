using System.Security.Cryptography;

namespace Ossuary.Pipelines.Tests.Interop.Original;

/// <summary>Keys and hashes in the forms ref-peer takes and prints.</summary>
internal static class OriginalKeys
{
    /// <summary>The 64-hex-character seed, ref-peer's <c>--secret</c>.</summary>
    public static string SeedHex(OssuaryIdentity identity)
    {
        Span<char> hex = stackalloc char[OssuaryIdentity.SeedSize * 2];
        Assert.True(identity.TryFormatSeedHex(hex, out _));
        return new string(hex);
    }

    public static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>A seed for OSSUARY_REF_SEED that differs between runs (the payload is still reproducible from it).</summary>
    public static ulong NewSeed() => BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) | 1;
}
