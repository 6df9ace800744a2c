namespace Ossuary.Pipelines.Trust;

/// <summary>What a known-hosts file says about a server's key.</summary>
public enum KnownHostStatus
{
    /// <summary>The file has no entry for the host: trust on first use may record it.</summary>
    Unknown,

    /// <summary>The file lists this key for the host (among others, perhaps: during a key rotation, the old and the new).</summary>
    Trusted,

    /// <summary>The file lists other keys for the host, not this one: refuse, someone may be impersonating it.</summary>
    Changed,
}
