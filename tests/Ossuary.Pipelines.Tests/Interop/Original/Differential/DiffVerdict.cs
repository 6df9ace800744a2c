namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>The verdict on one scenario: identical, a documented difference (named), or a failure with its detail.</summary>
internal sealed record DiffVerdict(string Kind, bool Failed, string Detail)
{
    public const string Identical = "identical";
    public const string Unexplained = "unexplained";
    public const string OurException = "exception in our session";
}
