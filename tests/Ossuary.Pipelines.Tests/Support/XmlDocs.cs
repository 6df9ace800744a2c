using System.Xml.Linq;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// The library's XML documentation as its package ships it (Ossuary.Pipelines.xml beside the
/// assembly), read the way an IDE reads it: a member's exceptions are its own <c>exception</c>
/// elements and those an <c>inheritdoc cref="..." path="/exception"</c> takes from another member.
/// </summary>
internal static class XmlDocs
{
    private static readonly Lazy<Dictionary<string, XElement>> Members = new(Load);

    /// <summary>
    /// Fails unless the member named <paramref name="memberId"/> (its documentation ID,
    /// <c>M:Namespace.Type.Method(ParameterTypes)</c>) documents each exception's type or a base type of it.
    /// </summary>
    public static void AssertDocumentsThrowing(string memberId, params Exception[] thrown)
    {
        IReadOnlyList<string> documented = ExceptionsOf(memberId);
        foreach (Exception exception in thrown)
        {
            bool listed = false;
            for (Type? type = exception.GetType(); type is not null && !listed; type = type.BaseType)
            {
                listed = documented.Contains("T:" + type.FullName);
            }

            Assert.True(listed,
                $"{memberId} threw {exception.GetType().FullName} ({exception.Message}), which its XML docs do not list; they list {string.Join(", ", documented)}.");
        }
    }

    /// <summary>The <c>cref</c> of every exception the member documents, following <c>inheritdoc</c> with a <c>cref</c>.</summary>
    public static IReadOnlyList<string> ExceptionsOf(string memberId)
    {
        Assert.True(Members.Value.TryGetValue(memberId, out XElement? member), $"The XML docs have no member {memberId}.");
        var crefs = member!.Elements("exception").Select(e => (string?)e.Attribute("cref") ?? "").ToList();
        foreach (XElement inherit in member.Elements("inheritdoc"))
        {
            if ((string?)inherit.Attribute("cref") is { } source && (string?)inherit.Attribute("path") is null or "/exception")
            {
                crefs.AddRange(ExceptionsOf(source));
            }
        }

        return crefs;
    }

    private static Dictionary<string, XElement> Load()
    {
        string path = Path.ChangeExtension(typeof(OssuaryIdentity).Assembly.Location, ".xml");
        Assert.True(File.Exists(path), $"The library's XML docs are not beside it: {path}.");
        return XDocument.Load(path).Descendants("member").ToDictionary(m => (string)m.Attribute("name")!);
    }
}
