using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Ossuary.Pipelines;

/// <summary>
/// The unmanaged block an <see cref="OssuaryIdentity"/> keeps its secret key in. A safe handle so
/// that each use counts: a Dispose that races a signature (the misuse the docs warn of) frees the
/// block once that signature is done, instead of under it, where libsodium went on reading zeroed or
/// freed memory, or the secret of whichever identity the allocator put there next. Its critical
/// finalizer also covers an identity dropped undisposed.
/// </summary>
internal sealed unsafe class SecretKeyMemory : SafeHandle
{
    public SecretKeyMemory(int size)
        : base(0, ownsHandle: true)
    {
        Size = size;
        SetHandle((nint)NativeMemory.AllocZeroed((nuint)size));
    }

    public int Size { get; }

    /// <summary>Where the key is; zero once it has been freed (a use may hold it past Dispose).</summary>
    public nint Address => handle;

    public override bool IsInvalid => handle == 0;

    /// <summary>Runs once the block is closed and no use holds it: zeroes and frees it.</summary>
    protected override bool ReleaseHandle()
    {
        CryptographicOperations.ZeroMemory(new Span<byte>((void*)handle, Size));
        NativeMemory.Free((void*)handle);
        handle = 0;
        return true;
    }
}
