namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// A call made before main(), from a constructor or a C++ global object's constructor
/// (tests/native/before_main.c). Linked with libossuary.a, the program's constructors ran before
/// the static initialisers of the runtime linked into the same executable, and that first call
/// aborted the program (SIGABRT in the runtime's PalAttachThread). The archive's initialisers now
/// carry a priority (.init_array.00101), so they run before the program's ordinary constructors,
/// as a shared library's do.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class BeforeMainTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task AConnectionCanBeMadeBeforeMain(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("before_main", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok before_main\n", result.Output);
    }
}
