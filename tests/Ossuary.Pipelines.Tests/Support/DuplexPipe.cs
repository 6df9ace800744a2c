using System.IO.Pipelines;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>An <see cref="IDuplexPipe"/> made of a reader and a writer the test holds the other ends of.</summary>
internal sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
{
    public PipeReader Input { get; } = input;

    public PipeWriter Output { get; } = output;
}
