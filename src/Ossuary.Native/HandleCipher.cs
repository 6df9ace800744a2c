using System.Buffers.Binary;
using Geralt;

namespace Ossuary.Native;

/// <summary>
/// Turns the serial number of a connection into its <c>OssuaryConnection *</c>: a permutation of
/// 44-bit values under a key drawn once per process (a child made by fork() draws its own), so that handles look random.
/// </summary>
/// <remarks>
/// <para>
/// A permutation, so two serial numbers never share a handle and a destroyed connection's handle
/// never comes back; keyed, so a small number, a neighbour of a live handle or a handle printed
/// by another process names a live connection only by a 2^-44 chance per connection. It is a
/// four-round Feistel network (a pseudorandom permutation when its round function is a
/// pseudorandom function, here keyed BLAKE2b). It only spreads handles out: no secret depends
/// on it, and code inside the process can read the table anyway.
/// </para>
/// <para>
/// 44 bits, because a handle is shaped like what libossuary 0.5 returns, a heap address: shifted
/// left by 3 it is 8-byte aligned and below 2^47 (x86-64 user space), so a program that keeps
/// pointers in 48 bits or tags their low bits keeps working.
/// </para>
/// </remarks>
internal sealed class HandleCipher
{
    /// <summary>Serial numbers 0 to 2^44 - 1; at 100,000 connections a second, more than five years.</summary>
    public const int Bits = 44;

    private const int HalfBits = Bits / 2;
    private const uint HalfMask = (1u << HalfBits) - 1;
    private const int Rounds = 4;

    private readonly byte[] _key = new byte[BLAKE2b.KeySize];

    public HandleCipher(int process)
    {
        Process = process;
        SecureRandom.Fill(_key);
    }

    /// <summary>The process (its id) the key was drawn in: a child made by fork() draws its own.</summary>
    public int Process { get; }

    /// <summary>The image of <paramref name="serial"/> (below 2^44) under the permutation, also below 2^44.</summary>
    public ulong Encrypt(ulong serial)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(serial, 1UL << Bits);
        uint left = (uint)(serial >> HalfBits);
        uint right = (uint)serial & HalfMask;
        for (byte round = 0; round < Rounds; round++)
        {
            (left, right) = (right, left ^ RoundFunction(round, right));
        }

        return ((ulong)left << HalfBits) | right;
    }

    private uint RoundFunction(byte round, uint half)
    {
        Span<byte> input = stackalloc byte[sizeof(byte) + sizeof(uint)];
        input[0] = round;
        BinaryPrimitives.WriteUInt32LittleEndian(input[1..], half);
        Span<byte> tag = stackalloc byte[BLAKE2b.MinTagSize];
        BLAKE2b.ComputeTag(tag, input, _key);
        return BinaryPrimitives.ReadUInt32LittleEndian(tag) & HalfMask;
    }
}
