using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A close wait (the options' internal <c>CloseWait</c>, 5 s by default) for tests that wait it out: a peer
/// that never reads, never closes or never stops sending, where what the test checks is what happens once the
/// wait has run out (disposal returns, the drop is logged), not how long it is. Paid in full, the default
/// cost about twenty tests 5 s each. Not zero: a peer that is told still has to read what it is told (a
/// refused client its Disconnect) while the wait reads and discards, and on a loaded machine that takes a moment.
/// </summary>
internal static class ShortCloseWait
{
    public static readonly TimeSpan Value = TimeSpan.FromSeconds(1);

    /// <summary><paramref name="options"/> with the short wait.</summary>
    public static OssuaryClientOptions Shortened(this OssuaryClientOptions options)
    {
        options.CloseWait = Value;
        return options;
    }

    /// <summary><paramref name="options"/> with the short wait.</summary>
    public static OssuaryServerOptions Shortened(this OssuaryServerOptions options)
    {
        options.CloseWait = Value;
        return options;
    }
}
