using Ossuary.Pipelines.Crypto;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Replays recorded random draws in order, checking each request's size; once the script runs
/// out it falls back to real randomness (later resets of a tampered session need fresh keys).
/// </summary>
internal sealed class ScriptedRandomSource(IEnumerable<byte[]> draws) : RandomSource
{
    private readonly Queue<byte[]> _draws = new(draws);

    public int Remaining => _draws.Count;

    public override void Fill(Span<byte> destination)
    {
        if (!_draws.TryDequeue(out byte[]? draw))
        {
            Secure.Fill(destination);
            return;
        }

        if (draw.Length != destination.Length)
        {
            throw new InvalidOperationException($"The session drew {destination.Length} bytes where the recording drew {draw.Length}.");
        }

        draw.CopyTo(destination);
    }
}
