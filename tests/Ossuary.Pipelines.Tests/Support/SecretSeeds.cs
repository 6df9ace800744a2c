namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Secret seeds and every textual form in which one could leak: hex in either case (the whole
/// seed or any 8-byte run of it), dash-separated hex as BitConverter writes it, and base64.
/// Public keys are not secret and are not looked for.
/// </summary>
internal sealed class SecretSeeds
{
    private const int RunBytes = 8;

    private readonly List<(string Name, string Form, StringComparison Comparison)> _forms = [];

    public int Count { get; private set; }

    public void Add(string name, OssuaryIdentity identity)
    {
        byte[] seed = new byte[OssuaryIdentity.SeedSize];
        identity.CopySeedTo(seed);
        Count++;
        _forms.Add((name, Convert.ToBase64String(seed), StringComparison.Ordinal));
        for (int start = 0; start + RunBytes <= seed.Length; start++)
        {
            ReadOnlySpan<byte> run = seed.AsSpan(start, RunBytes);
            _forms.Add((name, Convert.ToHexString(run), StringComparison.OrdinalIgnoreCase));
            _forms.Add((name, BitConverter.ToString(run.ToArray()), StringComparison.OrdinalIgnoreCase));
        }
    }

    /// <summary>Fails, naming the seed and the place, if <paramref name="text"/> holds any form of any seed.</summary>
    public void AssertNotIn(string? text, string where)
    {
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        foreach ((string name, string form, StringComparison comparison) in _forms)
        {
            Assert.False(text.Contains(form, comparison), $"{name}'s secret seed (or 8 bytes of it) appears in {where}: {text}");
        }
    }
}
