using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// The configuration section that Ossuary options of one type and name are bound from, as registered.
/// A second section bound to the same options was merged into them without a word: their key lists
/// added up, so a client trusted the servers of both sections and a server admitted the clients of both.
/// </summary>
internal sealed record BoundSection(Type Options, string Name, string Path)
{
    /// <summary>The section <typeparamref name="TOptions"/> named <paramref name="name"/> are bound from, if any.</summary>
    public static BoundSection? Find<TOptions>(IServiceCollection services, string name) =>
        services
            .Where(descriptor => descriptor.ServiceType == typeof(BoundSection) && !descriptor.IsKeyedService)
            .Select(descriptor => descriptor.ImplementationInstance)
            .OfType<BoundSection>()
            .FirstOrDefault(bound => bound.Options == typeof(TOptions) && bound.Name == name);

    public static void Add<TOptions>(IServiceCollection services, string name, IConfiguration configuration) =>
        services.AddSingleton(new BoundSection(typeof(TOptions), name, PathOf(configuration)));

    /// <summary>How a message names <paramref name="configuration"/>.</summary>
    public static string PathOf(IConfiguration configuration) =>
        configuration is IConfigurationSection section ? section.Path : "the configuration root";
}
