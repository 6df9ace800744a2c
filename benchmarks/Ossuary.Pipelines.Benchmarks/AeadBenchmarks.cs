using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

namespace Ossuary.Pipelines.Benchmarks;

/// <summary>
/// ChaCha20-Poly1305 IETF (RFC 8439: 32-byte key, 12-byte nonce, 16-byte tag, no associated data):
/// Geralt (libsodium) against the BCL's <see cref="System.Security.Cryptography.ChaCha20Poly1305"/>
/// (OpenSSL on Linux). The BCL is the baseline within each operation and plaintext size.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class AeadBenchmarks
{
    private const int KeySize = 32;
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private byte[] _key = [];
    private byte[] _nonce = [];
    private byte[] _plaintext = [];

    // Geralt appends the tag: ciphertext.Length == plaintext.Length + TagSize.
    private byte[] _geraltSealed = [];
    private byte[] _geraltSealOutput = [];

    // The BCL keeps the tag detached.
    private byte[] _bclCiphertext = [];
    private byte[] _bclTag = [];
    private byte[] _bclSealOutput = [];
    private byte[] _bclSealTag = [];

    private byte[] _openOutput = [];
    private System.Security.Cryptography.ChaCha20Poly1305? _bcl;

    [Params(64, 1024, 16384)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        if (!System.Security.Cryptography.ChaCha20Poly1305.IsSupported)
        {
            throw new PlatformNotSupportedException("The BCL ChaCha20-Poly1305 is not supported on this platform.");
        }

        _key = RandomNumberGenerator.GetBytes(KeySize);
        _nonce = RandomNumberGenerator.GetBytes(NonceSize);
        _plaintext = RandomNumberGenerator.GetBytes(Size);

        _bcl = new System.Security.Cryptography.ChaCha20Poly1305(_key);

        _geraltSealed = new byte[Size + TagSize];
        _geraltSealOutput = new byte[Size + TagSize];
        _bclCiphertext = new byte[Size];
        _bclTag = new byte[TagSize];
        _bclSealOutput = new byte[Size];
        _bclSealTag = new byte[TagSize];
        _openOutput = new byte[Size];

        Geralt.ChaCha20Poly1305.Encrypt(_geraltSealed, _plaintext, _nonce, _key);
        _bcl.Encrypt(_nonce, _plaintext, _bclCiphertext, _bclTag);

        // Both implement the same RFC 8439 construction, so the outputs must agree byte for byte.
        if (!_geraltSealed.AsSpan(0, Size).SequenceEqual(_bclCiphertext)
            || !_geraltSealed.AsSpan(Size).SequenceEqual(_bclTag))
        {
            throw new InvalidOperationException("Geralt and BCL ChaCha20-Poly1305 outputs differ.");
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _bcl?.Dispose();

    [Benchmark(Baseline = true, Description = "BCL")]
    [BenchmarkCategory("Seal")]
    public byte[] SealBcl()
    {
        _bcl!.Encrypt(_nonce, _plaintext, _bclSealOutput, _bclSealTag);
        return _bclSealOutput;
    }

    [Benchmark(Description = "Geralt")]
    [BenchmarkCategory("Seal")]
    public byte[] SealGeralt()
    {
        Geralt.ChaCha20Poly1305.Encrypt(_geraltSealOutput, _plaintext, _nonce, _key);
        return _geraltSealOutput;
    }

    [Benchmark(Baseline = true, Description = "BCL")]
    [BenchmarkCategory("Open")]
    public byte[] OpenBcl()
    {
        _bcl!.Decrypt(_nonce, _bclCiphertext, _bclTag, _openOutput);
        return _openOutput;
    }

    [Benchmark(Description = "Geralt")]
    [BenchmarkCategory("Open")]
    public byte[] OpenGeralt()
    {
        Geralt.ChaCha20Poly1305.Decrypt(_openOutput, _geraltSealed, _nonce, _key);
        return _openOutput;
    }
}
