using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A secret key file written from a fresh identity, whose seed the test keeps (in one pinned array
/// the memory search skips) to look for copies of it in the process's memory.
/// </summary>
internal sealed class KeyFileSeed : IDisposable
{
    private readonly byte[] _seed = GC.AllocateArray<byte>(OssuaryIdentity.SeedSize, pinned: true);

    public KeyFileSeed(string folder, string name)
    {
        Path = System.IO.Path.Combine(folder, name);
        using var identity = OssuaryIdentity.Generate();
        OssuarySecretKeyFile.Write(Path, identity);
        identity.CopySeedTo(_seed);
        PublicKey = identity.PublicKey;
    }

    public string Path { get; }

    public OssuaryPublicKey PublicKey { get; }

    /// <summary>How many copies of the seed the process's writable memory holds besides the test's own.</summary>
    public int CopiesInMemory() => ProcessMemory.Count(_seed);

    public void Dispose() => Array.Clear(_seed);
}
