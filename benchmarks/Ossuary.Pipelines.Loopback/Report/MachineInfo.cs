using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Ossuary.Pipelines.Loopback.Report;

/// <summary>What the figures were measured on: they mean something only next to each other and to this.</summary>
internal static class MachineInfo
{
    public static string Describe()
    {
        string cpu = ReadCpuModel() ?? RuntimeInformation.ProcessArchitecture.ToString();
        string openSsl = RunQuietly("openssl", "version") is { } version ? $", {string.Join(' ', version.Split(' ').Take(2))}" : "";
        return $"{cpu}, {Environment.ProcessorCount} cores; {RuntimeInformation.OSDescription}; {RuntimeInformation.FrameworkDescription}{openSsl}";
    }

    /// <summary>The 1-, 5- and 15-minute load averages (Linux), or null.</summary>
    public static string? LoadAverage()
    {
        try
        {
            string[] parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(' ', parts.Take(3));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string? ReadCpuModel()
    {
        try
        {
            string[] lines = File.ReadAllLines("/proc/cpuinfo");
            string? model = lines.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
            string? family = lines.FirstOrDefault(l => l.StartsWith("cpu family", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
            string? number = lines.FirstOrDefault(l => l.StartsWith("model\t", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
            return model is null ? null : family is null ? model : $"{model} (family {family}, model {number})";
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string? RunQuietly(string program, string arguments)
    {
        try
        {
            using Process? process = Process.Start(new ProcessStartInfo(program, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return null;
            }

            string output = process.StandardOutput.ReadToEnd().Trim();
            return process.WaitForExit(2000) && process.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return null;
        }
    }
}
