namespace Ossuary.Pipelines.Tests.Vectors;

/// <summary>
/// Every recorded session of the original, replayed both ways: our sides must write the recorded
/// bytes, and must reach the recorded outcome when fed the recorded packets.
/// </summary>
public class VectorReplayTests
{
    public static TheoryData<string> Vectors()
    {
        var data = new TheoryData<string>();
        foreach (string path in TestVector.AllPaths())
        {
            data.Add(path);
        }

        return data;
    }

    [Fact]
    public void TheSharedVectorsAreAllThere()
    {
        string[] names = [.. Directory.GetFiles(TestVector.SharedVectorsDirectory(), "*.json").Select(Path.GetFileName)!];
        Assert.Contains("a_unauth_anonymous_hello_world.json", names);
        Assert.Contains("d_client_disconnect.json", names);
        Assert.True(names.Length >= 4, $"found only {names.Length} vectors");
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void OurSidesWriteTheRecordedBytes(string path) => VectorReplayer.Produce(TestVector.Load(path));

    [Theory]
    [MemberData(nameof(Vectors))]
    public void OurSidesReachTheRecordedOutcomeFromTheRecordedPackets(string path) => VectorReplayer.Accept(TestVector.Load(path));
}
