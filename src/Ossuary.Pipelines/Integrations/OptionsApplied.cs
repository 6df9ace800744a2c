namespace Ossuary.Pipelines.Integrations;

/// <summary>What the owner of followed options made of a value it was offered (see <see cref="OptionsFollower{TOptions}"/>).</summary>
internal readonly record struct OptionsApplied
{
    /// <summary>Why the value could not be taken, the previous options staying in force; null when it was taken.</summary>
    public Exception? Failure { get; private init; }

    /// <summary>
    /// Taken, but for the identity key file it names, which could not be read: the key in force is
    /// presented meanwhile, and the value is offered again until the file can be read.
    /// </summary>
    public bool KeyFilePending { get; private init; }

    public static OptionsApplied Taken => default;

    public static OptionsApplied TakenKeepingKey => new() { KeyFilePending = true };

    public static OptionsApplied Refused(Exception failure) => new() { Failure = failure };
}
