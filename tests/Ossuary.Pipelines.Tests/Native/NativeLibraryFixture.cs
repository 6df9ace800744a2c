using System.Collections.Concurrent;
using System.Diagnostics;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>How a C test program is linked.</summary>
public enum NativeLink
{
    /// <summary>Against libossuary.so in the publish folder, from another folder (so libsodium must come through RUNPATH).</summary>
    Shared,

    /// <summary>Against libossuary.a with exactly <c>-L. -lossuary -lm</c>, libsodium.so beside the program.</summary>
    Static,

    /// <summary>Against the original libossuary 0.5.2 (../shared/interop/libossuary-0.5.2/libossuary.so) with the original's own ossuary.h.</summary>
    Original,

    /// <summary>Like <see cref="Shared"/>, built with <c>-fsanitize=address</c>; run it with <see cref="NativeLibraryFixture.SanitizerEnvironment"/>.</summary>
    SharedAddressSanitizer,
}

[CollectionDefinition(Name)]
public sealed class NativeLibraryCollection : ICollectionFixture<NativeLibraryFixture>
{
    public const string Name = "native library";
}

/// <summary>
/// Publishes src/Ossuary.Native once per test run (the README's command, into this test
/// assembly's folder) and compiles the C programs of tests/native against it with gcc.
/// </summary>
public sealed class NativeLibraryFixture : IAsyncLifetime
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(5);
    private static readonly string[] PublishedFiles = ["libossuary.so", "libossuary.a", "libsodium.so", "ossuary.h"];
    private readonly ConcurrentDictionary<(string Program, NativeLink Link), Lazy<Task<string>>> _programs = new();

    public NativeLibraryFixture()
    {
        RepositoryRoot = RepositoryPaths.Root();

        // One folder per test process, so that two test runs on one machine never share files.
        RunDirectory = Path.Combine(AppContext.BaseDirectory, "native-tests", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        ArtifactsDirectory = Path.Combine(RunDirectory, "artifacts");
        ProgramsDirectory = Path.Combine(RunDirectory, "programs");
        NeutralDirectory = Path.Combine(RunDirectory, "cwd");
        SourcesDirectory = Path.Combine(RepositoryRoot, "tests", "native");
    }

    public string RepositoryRoot { get; }

    public string RunDirectory { get; }

    /// <summary>Where the publish leaves libossuary.so, libossuary.a, libsodium.so and ossuary.h.</summary>
    public string ArtifactsDirectory { get; }

    public string ProgramsDirectory { get; }

    /// <summary>An empty folder to run programs in, so nothing is found through the working directory.</summary>
    public string NeutralDirectory { get; }

    public string SourcesDirectory { get; }

    public ProcessResult? Publish { get; private set; }

    public string StaticDirectory => Path.Combine(ProgramsDirectory, "static");

    public string SharedDirectory => Path.Combine(ProgramsDirectory, "shared");

    /// <summary>../shared/interop/libossuary-0.5.2: the original's libossuary.so and ossuary.h.</summary>
    public static string OriginalDirectory => Interop.Original.OriginalPeer.InteropDirectory;

    /// <summary>
    /// The environment for a <see cref="NativeLink.SharedAddressSanitizer"/> program: LeakSanitizer
    /// reads tests/native/lsan.supp, which names the NativeAOT runtime's one start-up allocation.
    /// </summary>
    public IReadOnlyDictionary<string, string> SanitizerEnvironment => new Dictionary<string, string>
    {
        ["LSAN_OPTIONS"] = "suppressions=" + Path.Combine(SourcesDirectory, "lsan.supp"),
        ["ASAN_OPTIONS"] = "abort_on_error=0:exitcode=86",
    };

    public async Task InitializeAsync()
    {
        if (Directory.Exists(RunDirectory))
        {
            Directory.Delete(RunDirectory, recursive: true);
        }

        foreach (string directory in new[] { ArtifactsDirectory, ProgramsDirectory, NeutralDirectory })
        {
            Directory.CreateDirectory(directory);
        }

        // Publishing writes src/Ossuary.Native/obj: a second test run publishing at the same
        // time would corrupt it, so runs take turns.
        await using FileStream turn = await TakeTurnAsync(Path.Combine(RepositoryRoot, "src", "Ossuary.Native", "obj", "test-publish.lock"));
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        Publish = await NativeProcess.RunAsync(
            dotnet,
            [
                "publish", Path.Combine(RepositoryRoot, "src", "Ossuary.Native"),
                "-c", "Release", "-r", "linux-x64", "-o", ArtifactsDirectory,
                // No build servers: they would outlive the publish and keep its output pipes open.
                "--disable-build-servers", "-p:UseSharedCompilation=false", "-nodeReuse:false", "-v:n",
            ],
            RepositoryRoot,
            PublishTimeout);
        string[] missing = [.. PublishedFiles
            .Where(file => !File.Exists(Path.Combine(ArtifactsDirectory, file)))];
        if (Publish.ExitCode != 0 || missing.Length > 0)
        {
            throw new InvalidOperationException($"The native library did not publish (missing: {string.Join(", ", missing)}):\n{Publish}");
        }

        // The static-link folder holds what a C developer would copy: the archive, the header
        // and libsodium.so, which the program loads at run time from its own folder.
        Directory.CreateDirectory(StaticDirectory);
        Directory.CreateDirectory(SharedDirectory);
        foreach (string file in new[] { "libossuary.a", "ossuary.h", "libsodium.so" })
        {
            File.Copy(Path.Combine(ArtifactsDirectory, file), Path.Combine(StaticDirectory, file), overwrite: true);
        }
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(RunDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return Task.CompletedTask;
    }

    /// <summary>Compiles tests/native/NAME.c (once per run and link) and returns the program's path.</summary>
    public Task<string> ProgramAsync(string name, NativeLink link) =>
        _programs.GetOrAdd((name, link), key => new Lazy<Task<string>>(() => CompileAsync(key.Program, key.Link))).Value;

    /// <summary>Runs a compiled program from the neutral folder.</summary>
    public Task<ProcessResult> RunAsync(string name, NativeLink link, params string[] arguments) =>
        RunAsync(name, link, link == NativeLink.SharedAddressSanitizer ? SanitizerEnvironment : null, arguments);

    /// <summary>Runs a compiled program from the neutral folder with <paramref name="environment"/> added.</summary>
    public async Task<ProcessResult> RunAsync(string name, NativeLink link, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        string program = await ProgramAsync(name, link);
        await using NativeProcess process = NativeProcess.Start(program, arguments, NeutralDirectory, environment);
        return await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>Compiles <paramref name="source"/> (a file anywhere) against our published library, like <see cref="NativeLink.Shared"/>; returns the gcc/g++ result and the program's path.</summary>
    public async Task<(ProcessResult Result, string Program)> CompileSourceAsync(string source, string name)
    {
        string compiler = source.EndsWith(".cpp", StringComparison.Ordinal) ? "g++" : "gcc";
        string output = Path.Combine(SharedDirectory, name);
        ProcessResult result = await NativeProcess.RunAsync(
            compiler,
            ["-Wall", "-Wextra", "-Werror", "-O1", "-o", output, source, "-I" + ArtifactsDirectory, "-L" + ArtifactsDirectory, "-lossuary", "-Wl,-rpath," + ArtifactsDirectory],
            SharedDirectory,
            TimeSpan.FromMinutes(2));
        return (result, output);
    }

    /// <summary>
    /// Compiles <paramref name="source"/> (a file anywhere) against a copy of our libossuary.so alone in the run
    /// directory's folder <paramref name="folderName"/>, with no libsodium.so beside it (the library's "cannot
    /// load libsodium" path); returns the program's path, in that folder. Fails the test if gcc fails.
    /// </summary>
    public async Task<string> CompileWithoutLibsodiumAsync(string source, string folderName)
    {
        string alone = Path.Combine(RunDirectory, folderName);
        Directory.CreateDirectory(alone);
        File.Copy(Path.Combine(ArtifactsDirectory, "libossuary.so"), Path.Combine(alone, "libossuary.so"), overwrite: true);
        string program = Path.Combine(alone, Path.GetFileNameWithoutExtension(source));
        ProcessResult compiled = await NativeProcess.RunAsync(
            "gcc",
            ["-Wall", "-Wextra", "-Werror", "-O1", "-o", program, source, "-I" + ArtifactsDirectory, "-L" + alone, "-lossuary", "-Wl,-rpath," + alone],
            alone,
            TimeSpan.FromMinutes(2));
        Assert.True(compiled.ExitCode == 0, compiled.ToString());
        return program;
    }

    /// <summary>Runs a tool such as nm or readelf and returns its output; fails the test if it fails.</summary>
    public static async Task<string> ToolAsync(string tool, params string[] arguments)
    {
        ProcessResult result = await NativeProcess.RunAsync(tool, arguments, timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Output;
    }

    private async Task<string> CompileAsync(string name, NativeLink link)
    {
        string source = Path.Combine(SourcesDirectory, name + (name.EndsWith("_cpp", StringComparison.Ordinal) ? ".cpp" : ".c"));
        string compiler = source.EndsWith(".cpp", StringComparison.Ordinal) ? "g++" : "gcc";
        string output;
        string workingDirectory;
        List<string> arguments = ["-Wall", "-Wextra", "-Werror", "-O1"];
        switch (link)
        {
            case NativeLink.Shared:
                workingDirectory = SharedDirectory;
                output = Path.Combine(SharedDirectory, name);
                arguments.AddRange(["-o", output, source, "-I" + ArtifactsDirectory, "-L" + ArtifactsDirectory, "-lossuary", "-Wl,-rpath," + ArtifactsDirectory]);
                break;
            case NativeLink.Static:
                // Exactly what the README tells a C developer: the archive, the C library's libm, nothing else.
                workingDirectory = StaticDirectory;
                output = Path.Combine(StaticDirectory, name);
                arguments.AddRange(["-o", output, source, "-I.", "-L.", "-lossuary", "-lm"]);
                break;
            case NativeLink.Original:
                // The same source against the original's header and library, as a program written
                // for libossuary 0.5 is built.
                workingDirectory = Path.Combine(ProgramsDirectory, "original");
                output = Path.Combine(workingDirectory, name);
                arguments.AddRange(["-o", output, source, "-I" + OriginalDirectory, "-L" + OriginalDirectory, "-lossuary", "-Wl,-rpath," + OriginalDirectory]);
                break;
            case NativeLink.SharedAddressSanitizer:
                workingDirectory = Path.Combine(ProgramsDirectory, "asan");
                output = Path.Combine(workingDirectory, name);
                arguments.AddRange(["-fsanitize=address", "-g", "-o", output, source, "-I" + ArtifactsDirectory, "-L" + ArtifactsDirectory, "-lossuary", "-Wl,-rpath," + ArtifactsDirectory]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(link));
        }

        Directory.CreateDirectory(workingDirectory);
        var clock = Stopwatch.StartNew();
        ProcessResult result = await NativeProcess.RunAsync(compiler, arguments, workingDirectory, TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, $"{compiler} failed ({clock.ElapsedMilliseconds} ms):\n{result}");
        return output;
    }

    /// <summary>An exclusive lock on <paramref name="path"/> (flock underneath), waiting for another holder up to the publish timeout.</summary>
    private static async Task<FileStream> TakeTurnAsync(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (waited.Elapsed < PublishTimeout)
            {
                await Task.Delay(250);
            }
        }
    }
}
