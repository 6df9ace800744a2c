using Ossuary.Pipelines.Tests.Cli;
using Ossuary.Pipelines.Tests.Native;
using Ossuary.Pipelines.Tests.Samples;
using Xunit.Abstractions;
using Xunit.Sdk;

[assembly: TestCollectionOrderer("Ossuary.Pipelines.Tests.Support.LongCollectionsFirst", "Ossuary.Pipelines.Tests")]

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Starts the collections that take minutes (the CLI's processes, the telemetry servers, the native
/// library's builds and processes: each serial within itself), longest first, before the hundreds of
/// short ones, which then fill the workers around them. Left to xunit's own (random) order, one of
/// them could start last and run on alone while the other worker idles, as the whole suite waited on
/// the CLI collection when it ran apart (and on the native collection, drawn last, in a trial run).
/// </summary>
public sealed class LongCollectionsFirst : ITestCollectionOrderer
{
    private static readonly string[] Longest = [CliCollection.Name, TelemetryServerCollection.Name, NativeLibraryCollection.Name];

    private readonly DefaultTestCollectionOrderer _rest = new();

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        _rest.OrderTestCollections(testCollections).OrderBy(Rank);

    // OrderBy is stable: the rest keep the default order.
    private static int Rank(ITestCollection collection) =>
        Array.IndexOf(Longest, collection.DisplayName) is int rank and >= 0 ? rank : Longest.Length;
}
