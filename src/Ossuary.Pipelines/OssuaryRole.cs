namespace Ossuary.Pipelines;

/// <summary>
/// The side a session plays. The numeric values are the original C API's connection types.
/// </summary>
public enum OssuaryRole
{
    /// <summary>Connects to a server, verifies the server's key, optionally proves its own identity.</summary>
    Client = 0,

    /// <summary>A server that admits only clients whose keys are on its allow-list.</summary>
    AuthenticatedServer = 1,

    /// <summary>A server that admits any client, anonymous ones included; the channel is still encrypted and the server still proves its identity.</summary>
    UnauthenticatedServer = 2,
}
