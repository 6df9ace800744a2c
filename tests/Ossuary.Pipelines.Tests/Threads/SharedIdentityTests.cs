using Geralt;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// One server <see cref="OssuaryIdentity"/> signs for every connection at once: its XML doc says
/// so, and that Dispose must wait for them. Sign, PublicKey and CopySeedTo from several threads
/// give what one thread does. A Dispose that races them (the misuse the docs warn of) makes them
/// throw <see cref="ObjectDisposedException"/>; it freed the seed under them instead, so they read
/// zeroed or freed memory, or the secret of another identity the allocator had put there since.
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

    [Fact]
    public void ADisposeRacingASignatureLetsItFinishUnderTheKeyOrMakesItThrow()
    {
        // A long message keeps the signature busy for tens of milliseconds between reading the seed
        // and reading the public half of the secret key: the Dispose lands in between every round.
        byte[] message = new byte[8 << 20];
        byte[] seed = new byte[OssuaryIdentity.SeedSize];
        SecureRandom.Fill(seed);
        byte[] otherSeed = new byte[OssuaryIdentity.SeedSize];
        SecureRandom.Fill(otherSeed);
        for (int round = 0; round < 3; round++)
        {
            OssuaryIdentity identity = OssuaryIdentity.FromSeed(seed);
            byte[] publicKey = new byte[OssuaryPublicKey.Size];
            identity.PublicKey.CopyTo(publicKey);
            byte[] signature = new byte[Ed25519.SignatureSize];
            Exception? thrown = null;
            using var start = new Barrier(2);
            var signer = new Thread(() =>
            {
                start.SignalAndWait();
                try
                {
                    identity.Sign(signature, message);
                }
                catch (Exception ex)
                {
                    thrown = ex;
                }
            });
            signer.Start();
            start.SignalAndWait();
            Thread.Sleep(1);
            identity.Dispose();

            // Identities made now may take the memory the seed was in: the signature must not read theirs.
            for (int i = 0; i < 8; i++)
            {
                OssuaryIdentity.FromSeed(otherSeed).Dispose();
            }

            Assert.True(signer.Join(TimeSpan.FromMinutes(1)));
            if (thrown is not null)
            {
                Assert.IsType<ObjectDisposedException>(thrown);
            }
            else
            {
                Assert.True(Ed25519.Verify(signature, message, publicKey), $"round {round}: the signature made as the identity was disposed does not verify under its key");
            }
        }
    }
}
