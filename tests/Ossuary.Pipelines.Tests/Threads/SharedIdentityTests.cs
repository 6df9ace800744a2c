using Geralt;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// One server <see cref="OssuaryIdentity"/> signs for every connection at once: its XML doc says
/// so, and that Dispose must wait for them. Sign, PublicKey and CopySeedTo from several threads
/// give what one thread does.
/// </summary>
public class SharedIdentityTests
{
    [Fact]
    public void SeveralThreadsSignWithOneIdentityAndEverySignatureVerifies()
    {
        using var identity = OssuaryIdentity.Generate();
        byte[] seed = new byte[OssuaryIdentity.SeedSize];
        identity.CopySeedTo(seed);
        using var start = new Barrier(4);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        Thread[] threads = [.. Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            Span<byte> signature = stackalloc byte[Ed25519.SignatureSize];
            Span<byte> copy = stackalloc byte[OssuaryIdentity.SeedSize];
            byte[] message = new byte[64];
            byte[] publicKey = new byte[OssuaryPublicKey.Size];
            identity.PublicKey.CopyTo(publicKey);
            start.SignalAndWait();
            for (int i = 0; i < 2_000; i++)
            {
                BitConverter.TryWriteBytes(message, (t << 20) | i);
                identity.Sign(signature, message);
                identity.CopySeedTo(copy);
                if (!Ed25519.Verify(signature, message, publicKey) || !copy.SequenceEqual(seed))
                {
                    failures.Enqueue($"thread {t}, signature {i}");
                }
            }
        }))];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromMinutes(2)));
        }

        Assert.Empty(failures);
    }
}
