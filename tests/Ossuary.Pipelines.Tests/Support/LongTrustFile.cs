namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Writes trust files past the most of one the library reads (16 MiB), of lines that each parse.</summary>
internal static class LongTrustFile
{
    /// <summary>The most of a trust file the library reads, as its messages give it.</summary>
    public const int Limit = 16 * 1024 * 1024;

    /// <summary>Writes <paramref name="line"/> (and a line break) over and over to <paramref name="path"/>, until it is longer than <see cref="Limit"/>.</summary>
    public static void Write(string path, string line)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(line + "\n");
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        for (long written = 0; written <= Limit; written += bytes.Length)
        {
            file.Write(bytes);
        }
    }
}
