using Geralt;

namespace Ossuary.Pipelines.Crypto;

/// <summary>
/// Where a session draws its challenge, ephemeral secrets, nonces and (for a server without a
/// key) its identity seed. Tests replace it to replay the recorded draws of the test vectors.
/// </summary>
internal abstract class RandomSource
{
    public static RandomSource Secure { get; } = new SecureRandomSource();

    public abstract void Fill(Span<byte> destination);

    private sealed class SecureRandomSource : RandomSource
    {
        public override void Fill(Span<byte> destination) => SecureRandom.Fill(destination);
    }
}
