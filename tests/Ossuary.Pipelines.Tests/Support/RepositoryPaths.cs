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
}
