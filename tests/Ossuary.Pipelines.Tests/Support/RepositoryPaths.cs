using System.Reflection;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Where the tests find the repository and the dotnet host that runs its programs.</summary>
internal static class RepositoryPaths
{
    /// <summary>The dotnet host running these tests (DOTNET_HOST_PATH under the SDK), else the one on PATH.</summary>
    public static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>The folder holding Ossuary.Pipelines.sln, above the test assembly.</summary>
    /// <exception cref="InvalidOperationException">The tests do not run from inside the repository.</exception>
    public static string Root()
    {
        DirectoryInfo? root = new(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Ossuary.Pipelines.sln")))
        {
            root = root.Parent;
        }

        return root?.FullName ?? throw new InvalidOperationException($"No Ossuary.Pipelines.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>
    /// A program the test project builds through its references: PROJECT/bin/CONFIGURATION/net10.0/FILE
    /// under the repository, the test assembly's own configuration when that was built, else the
    /// newer of Release and Debug.
    /// </summary>
    /// <param name="project">The project's folder, relative to the repository root (src/Ossuary.Cli).</param>
    /// <param name="file">The built assembly's file name (ossuary.dll).</param>
    /// <exception cref="InvalidOperationException">It is not built.</exception>
    public static string Built(string project, string file)
    {
        string bin = Path.Combine(Root(), project, "bin");
        string Candidate(string configuration) => Path.Combine(bin, configuration, "net10.0", file);
        string? own = typeof(RepositoryPaths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration;
        if (own is { Length: > 0 } && File.Exists(Candidate(own)))
        {
            return Candidate(own);
        }

        return new[] { Candidate("Release"), Candidate("Debug") }
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .FirstOrDefault() ?? throw new InvalidOperationException($"{file} is not built under {bin}.");
    }
}
