using Ossuary.Native;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The buffer the C library decrypts a record into before copying it to the caller: a collection
/// that compacts the heap while it holds the plaintext must not leave a copy behind, which no
/// wiping of the buffer reaches (the library runs the .NET collector inside the C program).
/// </summary>
public sealed class PooledPlaintextTests
{
    private const int MarkerCount = 512; // 16 KiB: a record of the size a C caller typically sends

    [Fact]
    public void ACollectionWhileARecordIsHeldLeavesNoCopyOfItBehind()
    {
        byte[] marker = GC.AllocateArray<byte>(32, pinned: true); // kept where the search skips it
        Random.Shared.NextBytes(marker);
        try
        {
            var plaintext = new PooledPlaintext();
            Span<byte> record = plaintext.GetSpan(MarkerCount * marker.Length);
            for (int i = 0; i < MarkerCount; i++)
            {
                marker.CopyTo(record[(i * marker.Length)..]);
            }

            plaintext.Advance(MarkerCount * marker.Length);
            Assert.True(ProcessMemory.Count(marker) >= MarkerCount, "the record was not found while held: the search proves nothing");

            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            plaintext.Clear();

            Assert.Equal(0, ProcessMemory.Count(marker));
        }
        finally
        {
            Array.Clear(marker);
        }
    }
}
