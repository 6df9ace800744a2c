using System.Diagnostics;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A folder on a file system that is full: a small tmpfs mounted for the test and filled up, so a
/// new file can still be created (tmpfs has inodes left) but no byte can be written to it. Needs
/// root, as the tests that install packages do; without it the test fails saying so, never passes.
/// </summary>
internal sealed class FullDisk : IDisposable
{
    private FullDisk(string path) => Path = path;

    /// <summary>The folder: every write to a file in it fails with ENOSPC once <see cref="Fill"/> has run.</summary>
    public string Path { get; }

    public static FullDisk Mount()
    {
        string path = Directory.CreateTempSubdirectory("ossuary-fulldisk-").FullName;
        using Process mount = Process.Start(new ProcessStartInfo("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", path])
        {
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("mount did not start");
        string error = mount.StandardError.ReadToEnd();
        mount.WaitForExit();
        if (mount.ExitCode != 0)
        {
            Directory.Delete(path);
            throw new InvalidOperationException($"this test mounts a small tmpfs to fill it, which needs root: mount exited {mount.ExitCode}: {error}");
        }

        return new FullDisk(path);
    }

    /// <summary>Takes every free block with a file of its own; what is left is inodes, not bytes.</summary>
    public void Fill(string name = ".filler")
    {
        using var filler = new FileStream(System.IO.Path.Combine(Path, name), FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        byte[] block = new byte[4096];
        try
        {
            while (true)
            {
                filler.Write(block);
            }
        }
        catch (IOException)
        {
            // No space left on device: full.
        }
    }

    /// <summary>Makes the file system read-only, as a kernel does after an I/O error (ext4's errors=remount-ro).</summary>
    public void RemountReadOnly()
    {
        using Process remount = Process.Start(new ProcessStartInfo("mount", ["-o", "remount,ro", Path])
        {
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("mount did not start");
        string error = remount.StandardError.ReadToEnd();
        remount.WaitForExit();
        if (remount.ExitCode != 0)
        {
            throw new InvalidOperationException($"mount -o remount,ro exited {remount.ExitCode}: {error}");
        }
    }

    /// <summary>Frees the space <see cref="Fill"/> took.</summary>
    public void Free(string name = ".filler") => File.Delete(System.IO.Path.Combine(Path, name));

    public void Dispose()
    {
        using Process? umount = Process.Start(new ProcessStartInfo("umount", [Path]));
        umount?.WaitForExit();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Still mounted (busy): the temporary folder is left to the system.
        }
    }
}
