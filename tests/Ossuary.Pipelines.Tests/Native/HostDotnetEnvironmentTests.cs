namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library in a program whose environment carries .NET runtime settings (DOTNET_*), meant
/// for the .NET programs of the machine: the runtime inside libossuary read them at its start,
/// ahead of the settings compiled into the library, and DOTNET_GCLargePages=1 (large pages, which
/// the machine does not have set aside) made it fail to start and abort the host program in its
/// first call ("Fatal error. .NET runtime failed to initialize.", SIGABRT). The library now
/// answers every DOTNET_ and COMPlus_ lookup of its own with nothing (native/runtime_environment.c).
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class HostDotnetEnvironmentTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task TheHostsDotnetSettingsDoNotReachTheLibrarysRuntime(NativeLink link)
    {
        var environment = new Dictionary<string, string>
        {
            ["DOTNET_GCLargePages"] = "1",
            ["COMPlus_GCLargePages"] = "1",
        };

        // message_sizes: a handshake, then 16,384 bytes each way and an empty message.
        ProcessResult result = await native.RunAsync("inproc", link, environment, "message_sizes");

        Assert.DoesNotContain("failed to initialize", result.Error, StringComparison.Ordinal);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("ok message_sizes\n", result.Output, StringComparison.Ordinal);
    }
}
