namespace Ossuary.Pipelines.Tests.Keys;

public class OssuaryPublicKeyTests
{
    private const string Hex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    [Fact]
    public void ParseReadsSixtyFourHexCharactersInEitherCase()
    {
        OssuaryPublicKey lower = OssuaryPublicKey.Parse(Hex);
        OssuaryPublicKey upper = OssuaryPublicKey.Parse(Hex.ToUpperInvariant());

        Assert.Equal(Convert.FromHexString(Hex), lower.Span.ToArray());
        Assert.Equal(lower, upper);
        Assert.Equal(Hex, upper.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511")]
    [InlineData("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a00")]
    [InlineData("zz5a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")]
    [InlineData("d75a980182b10ab7 54bfed3c964073a0ee172f3daa62325af021a68f707511a")]
    [InlineData("0xd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751")]
    public void TryParseRefusesAnythingButSixtyFourHexCharacters(string text)
    {
        Assert.False(OssuaryPublicKey.TryParse(text, out OssuaryPublicKey? key));
        Assert.Null(key);
    }

    [Fact]
    public void ParseThrowsAFormatExceptionThatDoesNotRepeatTheInput()
    {
        const string secretLooking = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeXX";

        var error = Assert.Throws<FormatException>(() => OssuaryPublicKey.Parse(secretLooking));

        Assert.DoesNotContain(secretLooking, error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("00112233", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void ConstructingFromTheWrongNumberOfBytesThrowsInvalidKeySize(int length)
    {
        var error = Assert.Throws<OssuaryException>(() => new OssuaryPublicKey(new byte[length]));

        Assert.Equal(OssuaryErrorReason.InvalidKeySize, error.Reason);
    }

    [Fact]
    public void KeysWithTheSameBytesAreEqualAndHashAlike()
    {
        OssuaryPublicKey a = OssuaryPublicKey.Parse(Hex);
        var b = new OssuaryPublicKey(Convert.FromHexString(Hex));

        Assert.True(a.Equals(b));
        Assert.True(a == b);
        Assert.False(a != b);
        Assert.True(a.Equals((object)b));
        Assert.True(a.Equals(Convert.FromHexString(Hex)));
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
    }

    [Fact]
    public void KeysThatDifferInOneBitAreNotEqual()
    {
        byte[] bytes = Convert.FromHexString(Hex);
        OssuaryPublicKey a = new(bytes);
        bytes[31] ^= 0x01;
        OssuaryPublicKey b = new(bytes);

        Assert.False(a.Equals(b));
        Assert.True(a != b);
        Assert.False(a.Equals((OssuaryPublicKey?)null));
        Assert.False(a == null);
        Assert.False(a.Equals("not a key"));
    }

    [Fact]
    public void AnonymousIsTheIdentityPointEncoding()
    {
        byte[] expected = new byte[32];
        expected[0] = 1;

        Assert.Equal(expected, OssuaryPublicKey.Anonymous.Span.ToArray());
        Assert.True(OssuaryPublicKey.Anonymous.IsAnonymous);
        Assert.True(new OssuaryPublicKey(expected).IsAnonymous);
        Assert.False(OssuaryPublicKey.Parse(Hex).IsAnonymous);
    }

    [Fact]
    public void TryFormatWritesTheSameHexAsToString()
    {
        OssuaryPublicKey key = OssuaryPublicKey.Parse(Hex);
        char[] buffer = new char[64];

        Assert.True(key.TryFormat(buffer, out int written, default, null));
        Assert.Equal(Hex, new string(buffer, 0, written));
        Assert.False(key.TryFormat(new char[63], out _, default, null));
        Assert.Equal(Hex, $"{key}");
    }
}
