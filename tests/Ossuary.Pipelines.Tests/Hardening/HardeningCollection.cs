namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// The load tests (thousands of sockets, memory and thread-pool measurements) run alone, after
/// every parallel collection has finished: neither their figures nor their deadlines should
/// depend on what other tests happen to be doing.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HardeningCollection
{
    public const string Name = "Hardening load";
}
