using FlexPrefill.SemanticKernel;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.TextGeneration;

namespace Microsoft.SemanticKernel;

/// <summary>
/// Registers the FlexPrefill services on an <see cref="IServiceCollection"/>. Every service is a keyed singleton
/// (<c>serviceId</c>; null registers the default). All FlexPrefill services of one container share one model
/// (<see cref="FlexPrefillModelHost"/>): the options of every call configure that one model, which is loaded the first
/// time a service is resolved, validated on host start, and disposed with the container.
/// </summary>
public static class FlexPrefillServiceCollectionExtensions
{
    /// <summary>Adds an <see cref="IChatClient"/> that invokes kernel functions (and plain AI functions) automatically.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the load options (at least <see cref="FlexPrefillServiceOptions.ModelPath"/>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddFlexPrefillChatClient(this IServiceCollection services, Action<FlexPrefillServiceOptions> configure, string? serviceId = null) =>
        services.AddModel(configure).AddChatClient(serviceId);

    /// <summary>Adds an <see cref="IChatClient"/>, its load options bound from <paramref name="configuration"/>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">A section with <see cref="FlexPrefillServiceOptions"/> keys (conventionally <c>"FlexPrefill"</c>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddFlexPrefillChatClient(this IServiceCollection services, IConfiguration configuration, string? serviceId = null) =>
        services.AddModel(configuration).AddChatClient(serviceId);

    /// <summary>Adds an <see cref="IChatCompletionService"/> (function calling through <c>FunctionChoiceBehavior</c>).</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the load options (at least <see cref="FlexPrefillServiceOptions.ModelPath"/>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddFlexPrefillChatCompletion(this IServiceCollection services, Action<FlexPrefillServiceOptions> configure, string? serviceId = null) =>
        services.AddModel(configure).AddChatCompletion(serviceId);

    /// <summary>Adds an <see cref="IChatCompletionService"/>, its load options bound from <paramref name="configuration"/>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">A section with <see cref="FlexPrefillServiceOptions"/> keys (conventionally <c>"FlexPrefill"</c>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddFlexPrefillChatCompletion(this IServiceCollection services, IConfiguration configuration, string? serviceId = null) =>
        services.AddModel(configuration).AddChatCompletion(serviceId);

    /// <summary>Adds an <see cref="ITextGenerationService"/> (the prompt is one user message; no tools).</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the load options (at least <see cref="FlexPrefillServiceOptions.ModelPath"/>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddFlexPrefillTextGeneration(this IServiceCollection services, Action<FlexPrefillServiceOptions> configure, string? serviceId = null) =>
        services.AddModel(configure).AddTextGeneration(serviceId);

    /// <summary>Adds an <see cref="ITextGenerationService"/>, its load options bound from <paramref name="configuration"/>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">A section with <see cref="FlexPrefillServiceOptions"/> keys (conventionally <c>"FlexPrefill"</c>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddFlexPrefillTextGeneration(this IServiceCollection services, IConfiguration configuration, string? serviceId = null) =>
        services.AddModel(configuration).AddTextGeneration(serviceId);

    static IServiceCollection AddModel(this IServiceCollection services, Action<FlexPrefillServiceOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<FlexPrefillServiceOptions>().Configure(configure).ValidateOnStart();
        return services.AddModelCore();
    }

    static IServiceCollection AddModel(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<FlexPrefillServiceOptions>().Bind(configuration).ValidateOnStart();
        return services.AddModelCore();
    }

    static IServiceCollection AddModelCore(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<FlexPrefillServiceOptions>, FlexPrefillServiceOptionsValidator>());
        services.TryAddSingleton(sp => new FlexPrefillModelHost(
            sp.GetRequiredService<IOptions<FlexPrefillServiceOptions>>(),
            sp.GetService<FlexPrefillModelLoader>() ?? FlexPrefillModelLoader.Default,
            sp.GetService<ILoggerFactory>()));
        services.TryAddSingleton(sp => new FlexPrefillChatClient(
            sp.GetRequiredService<FlexPrefillModelHost>().Model,
            sp.GetRequiredService<IOptions<FlexPrefillServiceOptions>>().Value,
            sp.GetService<ILoggerFactory>()));
        return services;
    }

    static IChatClient BuildFunctionInvokingClient(IServiceProvider sp) =>
        sp.GetRequiredService<FlexPrefillChatClient>()
            .AsBuilder()
            .UseKernelFunctionInvocation(sp.GetService<ILoggerFactory>())
            .Build(sp);

    static IServiceCollection AddChatClient(this IServiceCollection services, string? serviceId)
    {
        services.AddKeyedSingleton<IChatClient>(serviceId, (sp, _) => BuildFunctionInvokingClient(sp));
        return services;
    }

    static IServiceCollection AddChatCompletion(this IServiceCollection services, string? serviceId)
    {
        services.AddKeyedSingleton<IChatCompletionService>(serviceId, (sp, _) => BuildFunctionInvokingClient(sp).AsChatCompletionService(sp));
        return services;
    }

    static IServiceCollection AddTextGeneration(this IServiceCollection services, string? serviceId)
    {
        services.AddKeyedSingleton<ITextGenerationService>(serviceId, (sp, _) => new FlexPrefillTextGenerationService(sp.GetRequiredService<FlexPrefillChatClient>()));
        return services;
    }
}
