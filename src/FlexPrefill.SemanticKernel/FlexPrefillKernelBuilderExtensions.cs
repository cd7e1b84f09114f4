using FlexPrefill.SemanticKernel;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.TextGeneration;

namespace Microsoft.SemanticKernel;

/// <summary>
/// Registers the FlexPrefill services on an <see cref="IKernelBuilder"/>; see
/// <see cref="FlexPrefillServiceCollectionExtensions"/> for the lifetime rules (one shared model, keyed singletons).
/// </summary>
public static class FlexPrefillKernelBuilderExtensions
{
    /// <summary>Adds an <see cref="IChatClient"/> that invokes kernel functions automatically.</summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="configure">Sets the load options (at least <see cref="FlexPrefillServiceOptions.ModelPath"/>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddFlexPrefillChatClient(this IKernelBuilder builder, Action<FlexPrefillServiceOptions> configure, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddFlexPrefillChatClient(configure, serviceId);
        return builder;
    }

    /// <summary>Adds an <see cref="IChatClient"/>, its load options bound from <paramref name="configuration"/>.</summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="configuration">A section with <see cref="FlexPrefillServiceOptions"/> keys.</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddFlexPrefillChatClient(this IKernelBuilder builder, IConfiguration configuration, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddFlexPrefillChatClient(configuration, serviceId);
        return builder;
    }

    /// <summary>Adds an <see cref="IChatCompletionService"/> (function calling through <c>FunctionChoiceBehavior</c>).</summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="configure">Sets the load options (at least <see cref="FlexPrefillServiceOptions.ModelPath"/>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddFlexPrefillChatCompletion(this IKernelBuilder builder, Action<FlexPrefillServiceOptions> configure, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddFlexPrefillChatCompletion(configure, serviceId);
        return builder;
    }

    /// <summary>Adds an <see cref="IChatCompletionService"/>, its load options bound from <paramref name="configuration"/>.</summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="configuration">A section with <see cref="FlexPrefillServiceOptions"/> keys.</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddFlexPrefillChatCompletion(this IKernelBuilder builder, IConfiguration configuration, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddFlexPrefillChatCompletion(configuration, serviceId);
        return builder;
    }

    /// <summary>Adds an <see cref="ITextGenerationService"/> (the prompt is one user message; no tools).</summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="configure">Sets the load options (at least <see cref="FlexPrefillServiceOptions.ModelPath"/>).</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddFlexPrefillTextGeneration(this IKernelBuilder builder, Action<FlexPrefillServiceOptions> configure, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddFlexPrefillTextGeneration(configure, serviceId);
        return builder;
    }

    /// <summary>Adds an <see cref="ITextGenerationService"/>, its load options bound from <paramref name="configuration"/>.</summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="configuration">A section with <see cref="FlexPrefillServiceOptions"/> keys.</param>
    /// <param name="serviceId">Key of the service; null for the default.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddFlexPrefillTextGeneration(this IKernelBuilder builder, IConfiguration configuration, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddFlexPrefillTextGeneration(configuration, serviceId);
        return builder;
    }
}
