using System.Diagnostics;
using System.Globalization;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// The inotify watches this process holds on one folder (Linux): each is an "inotify wd:" line of an
/// inotify descriptor's fdinfo naming the folder's inode. A folder of the test's own is watched by
/// nobody else, so the count is the test's, whatever other tests run meanwhile.
/// </summary>
internal static class InotifyWatches
{
    public static int On(string folder)
    {
        string inode = "ino:" + Inode(folder).ToString("x", CultureInfo.InvariantCulture) + " ";
        return Directory.EnumerateFiles("/proc/self/fdinfo").Sum(fd =>
        {
            try
            {
                return File.ReadLines(fd).Count(line => line.StartsWith("inotify wd:", StringComparison.Ordinal) && line.Contains(inode, StringComparison.Ordinal));
            }
            catch (IOException)
            {
                return 0; // closed since it was listed
            }
        });
    }

    private static long Inode(string path)
    {
        using Process stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%i", path]) { RedirectStandardOutput = true })!;
        string output = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return long.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }
}
