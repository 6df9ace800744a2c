namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>
/// The lines the bench and its generator process exchange, one per line, fields separated by spaces.
/// Child to parent: N <see cref="Key"/> lines and <see cref="KeysDone"/>; then one reply per command.
/// Parent to child: <see cref="Server"/> (end point, key), then the commands; <see cref="Ingested"/>
/// lines (the server's count since the send began) arrive at any time during <see cref="Send"/>.
/// </summary>
internal static class GeneratorProtocol
{
    public const string Key = "key";
    public const string KeysDone = "keys-done";
    public const string Server = "server";
    public const string WarmUp = "warm-up";
    public const string WarmedUp = "warmed-up";
    public const string Connect = "connect";
    public const string Connected = "connected";
    public const string Send = "send";
    public const string Ingested = "ingested";
    public const string Sent = "sent";
    public const string Storm = "storm";
    public const string Stormed = "stormed";
    public const string Finish = "finish";
    public const string Device = "device";
    public const string Done = "done";
}
