namespace Ossuary.Pipelines.Transport;

/// <summary>Whom a server admits.</summary>
public enum OssuaryServerMode
{
    /// <summary>Only clients that prove a key on the allow-list or approved by the authorization callback.</summary>
    Authenticated,

    /// <summary>Any client, anonymous ones included. The channel is still encrypted and the server still proves its identity.</summary>
    Unauthenticated,
}
