namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// ossuary.h's "Handles" for a pre-forking program: children made by fork() after the library
/// started inherited its handle key and serial number, so each handed out the very handles its
/// siblings and its parent handed out next (tests/native/forked_handles.c: two children reported
/// the same handle). Each child now draws a key of its own; the connections it inherited still work.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class ForkedHandlesTests(NativeLibraryFixture native)
{
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task ChildrenOfAForkHandOutHandlesOfTheirOwn(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("forked_handles", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok forked_handles\n", result.Output);
    }
}
