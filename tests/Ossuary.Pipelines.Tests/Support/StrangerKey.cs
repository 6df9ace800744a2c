namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A server key no test server holds: what client options trust when the test never gets as far as
/// a server's key (a failed connect, a cancelled call), since options that trust no server are refused.
/// </summary>
internal static class StrangerKey
{
    public static OssuaryPublicKey Value { get; } = Generate();

    private static OssuaryPublicKey Generate()
    {
        using var identity = OssuaryIdentity.Generate();
        return identity.PublicKey;
    }
}
