namespace Ossuary.Pipelines.Tests.Keys;

public class OssuaryIdentityTests
{
    // RFC 8032, section 7.1, TEST 1.
    private const string Rfc8032Seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    private const string Rfc8032Public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    private const string Rfc8032EmptyMessageSignature =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    [Fact]
    public void TheRfc8032TestVectorSeedGivesItsPublicKeyAndSignature()
    {
        using OssuaryIdentity identity = OssuaryIdentity.FromSeed(Convert.FromHexString(Rfc8032Seed));
        byte[] signature = new byte[64];

        identity.Sign(signature, ReadOnlySpan<byte>.Empty);

        Assert.Equal(Rfc8032Public, identity.PublicKey.ToString());
        Assert.Equal(Rfc8032EmptyMessageSignature, Convert.ToHexStringLower(signature));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void ASeedOfTheWrongSizeThrowsInvalidKeySize(int length)
    {
        var error = Assert.Throws<OssuaryException>(() => OssuaryIdentity.FromSeed(new byte[length]));

        Assert.Equal(OssuaryErrorReason.InvalidKeySize, error.Reason);
    }

    [Fact]
    public void ToStringNamesThePublicKeyAndNeverTheSeed()
    {
        using OssuaryIdentity identity = OssuaryIdentity.ParseSeedHex(Rfc8032Seed);

        string text = identity.ToString();

        Assert.Contains(Rfc8032Public, text, StringComparison.Ordinal);
        Assert.DoesNotContain(Rfc8032Seed, text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Rfc8032Seed[..16], text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void ParseSeedHexRoundTripsWithTryFormatSeedHex()
    {
        using OssuaryIdentity identity = OssuaryIdentity.ParseSeedHex(Rfc8032Seed.ToUpperInvariant());
        char[] buffer = new char[64];

        Assert.True(identity.TryFormatSeedHex(buffer, out int written));
        using OssuaryIdentity again = OssuaryIdentity.ParseSeedHex(buffer.AsSpan(0, written));

        Assert.Equal(Rfc8032Seed, new string(buffer, 0, written));
        Assert.Equal(identity.PublicKey, again.PublicKey);
        Assert.False(identity.TryFormatSeedHex(new char[63], out _));
    }

    [Fact]
    public void CopySeedToGivesBackTheSeed()
    {
        using OssuaryIdentity identity = OssuaryIdentity.FromSeed(Convert.FromHexString(Rfc8032Seed));
        byte[] seed = new byte[32];

        identity.CopySeedTo(seed);

        Assert.Equal(Rfc8032Seed, Convert.ToHexStringLower(seed));
    }

    [Theory]
    [InlineData("")]
    [InlineData("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6")]
    [InlineData("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7fgg")]
    public void ParseSeedHexThrowsAFormatExceptionThatDoesNotRepeatTheInput(string text)
    {
        var error = Assert.Throws<FormatException>(() => OssuaryIdentity.ParseSeedHex(text));

        Assert.DoesNotContain("9d61b19d", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void UsingTheSecretAfterDisposeThrowsObjectDisposedException()
    {
        OssuaryIdentity identity = OssuaryIdentity.Generate();
        identity.Dispose();

        Assert.Throws<ObjectDisposedException>(() => identity.TryFormatSeedHex(new char[64], out _));
        Assert.Throws<ObjectDisposedException>(() => identity.CopySeedTo(new byte[32]));
        Assert.Throws<ObjectDisposedException>(() => identity.Sign(new byte[64], "message"u8));
        identity.Dispose();
    }

    [Fact]
    public void GeneratedIdentitiesDiffer()
    {
        using OssuaryIdentity a = OssuaryIdentity.Generate();
        using OssuaryIdentity b = OssuaryIdentity.Generate();

        Assert.NotEqual(a.PublicKey, b.PublicKey);
    }
}
