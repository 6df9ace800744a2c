using System.Buffers.Binary;
using Ossuary.Pipelines.Crypto;

namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>
/// The random draws of the original under <c>OSSUARY_REF_SEED=N</c> (ref-peer-src/README.md):
/// every draw of the process, in order, is the next bytes of one ChaCha20 keystream keyed by N as
/// 8 little-endian bytes and 24 zero bytes, zero nonce, block counter from 0. One instance is
/// shared by our client and server, so both sides draw from one stream in call order, as the
/// original's process-wide generator does.
/// </summary>
/// <remarks>
/// Seeded draws rather than <c>OSSUARY_REF_DRAWS_FILE</c>: a draws file must name each draw's
/// length in advance, and with faults the number of resets (each one draws) is what the run is
/// about to find out. With a zero nonce and fewer than 2^32 blocks, libsodium's
/// <c>crypto_stream_chacha20</c> (64-bit nonce and counter) and the RFC 8439 block function
/// (32-bit counter, 96-bit nonce) produce the same keystream.
/// </remarks>
internal sealed class SeededDraws : RandomSource
{
    private readonly uint[] _key = new uint[8];
    private readonly byte[] _block = new byte[64];
    private uint _counter;
    private int _used = 64;

    public SeededDraws(ulong seed)
    {
        _key[0] = (uint)seed;
        _key[1] = (uint)(seed >> 32);
    }

    /// <summary>How many bytes have been drawn.</summary>
    public long Drawn { get; private set; }

    public override void Fill(Span<byte> destination)
    {
        Drawn += destination.Length;
        while (!destination.IsEmpty)
        {
            if (_used == 64)
            {
                NextBlock();
            }

            int take = Math.Min(64 - _used, destination.Length);
            _block.AsSpan(_used, take).CopyTo(destination);
            _used += take;
            destination = destination[take..];
        }
    }

    private void NextBlock()
    {
        Span<uint> state = stackalloc uint[16];
        state[0] = 0x61707865;
        state[1] = 0x3320646e;
        state[2] = 0x79622d32;
        state[3] = 0x6b206574;
        _key.CopyTo(state[4..12]);
        state[12] = _counter++;
        Span<uint> x = stackalloc uint[16];
        state.CopyTo(x);
        for (int i = 0; i < 10; i++)
        {
            Quarter(x, 0, 4, 8, 12);
            Quarter(x, 1, 5, 9, 13);
            Quarter(x, 2, 6, 10, 14);
            Quarter(x, 3, 7, 11, 15);
            Quarter(x, 0, 5, 10, 15);
            Quarter(x, 1, 6, 11, 12);
            Quarter(x, 2, 7, 8, 13);
            Quarter(x, 3, 4, 9, 14);
        }

        for (int i = 0; i < 16; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_block.AsSpan(4 * i), x[i] + state[i]);
        }

        _used = 0;
    }

    private static void Quarter(Span<uint> x, int a, int b, int c, int d)
    {
        x[a] += x[b];
        x[d] = uint.RotateLeft(x[d] ^ x[a], 16);
        x[c] += x[d];
        x[b] = uint.RotateLeft(x[b] ^ x[c], 12);
        x[a] += x[b];
        x[d] = uint.RotateLeft(x[d] ^ x[a], 8);
        x[c] += x[d];
        x[b] = uint.RotateLeft(x[b] ^ x[c], 7);
    }
}
