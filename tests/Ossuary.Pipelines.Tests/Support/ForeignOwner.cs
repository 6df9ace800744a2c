using System.Diagnostics;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Files owned by another user (nobody, 65534), as only root can make them (chown). Run as anyone
/// else, a test cannot make one, and checks instead that the owner check reads real owners.
/// </summary>
internal static class ForeignOwner
{
    public const uint Nobody = 65534;

    /// <summary>Gives <paramref name="path"/> (the file itself, never a link's target) to nobody; false when this process may not (not root).</summary>
    public static bool TryGiveAway(string path)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return false;
        }

        using Process chown = Process.Start(new ProcessStartInfo("chown", ["-h", Nobody.ToString(System.Globalization.CultureInfo.InvariantCulture), path]))!;
        chown.WaitForExit();
        Assert.Equal(0, chown.ExitCode);
        return true;
    }

    /// <summary>
    /// What a test that cannot give a file away checks instead: the owner read from an opened file is
    /// the real one (this process's user for <paramref name="ownFile"/>, root for /etc/passwd), so the
    /// check compares real owners and a file of another user's would be refused.
    /// </summary>
    public static void AssertOwnersAreRead(string ownFile)
    {
        using (var own = File.OpenHandle(ownFile))
        {
            Assert.Equal(FileOwner.EffectiveUser, FileOwner.Of(own, ownFile, "test"));
        }

        using var root = File.OpenHandle("/etc/passwd");
        Assert.Equal(0u, FileOwner.Of(root, "/etc/passwd", "test"));
        Assert.NotEqual(0u, FileOwner.EffectiveUser); // else the file could have been given away
    }
}
