using FlexPrefill.Inference;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel;

namespace FlexPrefill.SemanticKernel.Tests.TestDoubles;

/// <summary>Builds kernels and containers whose FlexPrefill model is a scripted one.</summary>
public static class Scripted
{
    /// <summary>A model folder that exists (the options validator checks the path).</summary>
    public static string ModelFolder { get; } = Directory.CreateTempSubdirectory("flexprefill-sk-tests").FullName;

    public static IServiceCollection UseModel(this IServiceCollection services, ILanguageModel model)
    {
        services.AddSingleton(new FlexPrefillModelLoader((_, _) => model));
        return services;
    }

    public static Kernel Kernel(ILanguageModel model, ILoggerFactory? loggerFactory = null, Action<FlexPrefillServiceOptions>? configure = null)
    {
        var builder = Microsoft.SemanticKernel.Kernel.CreateBuilder();
        builder.Services.UseModel(model);
        if (loggerFactory is not null) builder.Services.AddSingleton(loggerFactory);
        builder.AddFlexPrefillChatCompletion(o => { o.ModelPath = ModelFolder; o.Device = "cpu"; configure?.Invoke(o); });
        builder.AddFlexPrefillTextGeneration(o => { });
        return builder.Build();
    }

    public static FlexPrefillChatClient Client(ILanguageModel model, ILoggerFactory? loggerFactory = null, FlexPrefillServiceOptions? options = null) =>
        new(model, options ?? new FlexPrefillServiceOptions { Attention = Inference.Generation.AttentionMode.Dense }, loggerFactory);

    /// <summary>A reply that echoes nothing: always the same text.</summary>
    public static Func<ScriptedRequest, string> Says(string reply) => _ => reply;
}
