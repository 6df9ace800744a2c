namespace Ossuary.Native;

/// <summary>The C API's return values below zero; zero and above count bytes (or mean success).</summary>
internal static class ReturnCode
{
    /// <summary>Any failure: a NULL or short argument, a call in the wrong state, a broken or ended session.</summary>
    public const int Other = -1;

    /// <summary>Part of a packet went through; the in/out length says how many bytes were consumed or written.</summary>
    public const int WouldBlock = -64;

    /// <summary>The server proved a key the client does not trust: the handshake waits for a decision.</summary>
    public const int UntrustedServer = -65;
}
