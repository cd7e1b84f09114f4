using FlexPrefill.Inference;
using FlexPrefill.SemanticKernel.Tests.TestDoubles;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Services;
using Microsoft.SemanticKernel.TextGeneration;

namespace FlexPrefill.SemanticKernel.Tests;

public sealed class RegistrationTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Keyed_services_share_one_model_loaded_once_and_disposed_with_the_container()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        int loads = 0;
        var services = new ServiceCollection();
        services.AddSingleton(new FlexPrefillModelLoader((_, _) => { loads++; return model; }));
        services.AddFlexPrefillChatCompletion(o => o.ModelPath = Scripted.ModelFolder, serviceId: "a");
        services.AddFlexPrefillTextGeneration(o => o.QueueCapacity = 4, serviceId: "b");
        services.AddFlexPrefillChatClient(o => { }, serviceId: "c");

        var provider = services.BuildServiceProvider();
        var host = provider.GetRequiredService<FlexPrefillModelHost>();
        Assert.False(host.IsLoaded);
        var chat = provider.GetRequiredKeyedService<IChatCompletionService>("a");
        var text = provider.GetRequiredKeyedService<ITextGenerationService>("b");
        var client = provider.GetRequiredKeyedService<IChatClient>("c");
        await chat.GetChatMessageContentAsync("hi", cancellationToken: Ct);
        await text.GetTextContentAsync("hi", cancellationToken: Ct);
        await client.GetResponseAsync("hi", cancellationToken: Ct);

        Assert.Equal(1, loads);
        Assert.Equal(3, model.Requests.Count);
        Assert.Null(provider.GetService<IChatCompletionService>());
        Assert.Equal(4, provider.GetRequiredService<IOptions<FlexPrefillServiceOptions>>().Value.QueueCapacity);
        Assert.False(model.Disposed);
        await provider.DisposeAsync();
        Assert.True(model.Disposed);
        Assert.Throws<ObjectDisposedException>(() => host.Model);
    }

    [Fact]
    public void A_default_service_id_registers_the_unkeyed_services()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        var kernel = Scripted.Kernel(model);

        Assert.IsType<FlexPrefillTextGenerationService>(kernel.GetRequiredService<ITextGenerationService>());
        Assert.Equal("scripted-model", kernel.GetRequiredService<IChatCompletionService>().GetModelId());
    }

    [Fact]
    public void Options_bind_from_configuration()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["FlexPrefill:ModelPath"] = Scripted.ModelFolder, ["FlexPrefill:Device"] = "cuda:1", ["FlexPrefill:DType"] = "float16",
            ["FlexPrefill:MaxContextTokens"] = "32768", ["FlexPrefill:Attention"] = "dense", ["FlexPrefill:Gamma"] = "0.9",
            ["FlexPrefill:Tau"] = "0.05", ["FlexPrefill:MinBudget"] = "512", ["FlexPrefill:QueueCapacity"] = "8",
            ["FlexPrefill:PrefixCacheBytes"] = "1073741824", ["FlexPrefill:MaxOutputTokens"] = "300",
        }).Build();
        var services = new ServiceCollection();
        services.AddFlexPrefillChatCompletion(configuration.GetSection(FlexPrefillServiceOptions.SectionName));

        var o = services.BuildServiceProvider().GetRequiredService<IOptions<FlexPrefillServiceOptions>>().Value;

        Assert.Equal((Scripted.ModelFolder, "cuda:1", "float16", 32768), (o.ModelPath, o.Device, o.DType, o.MaxContextTokens!.Value));
        Assert.Equal(Inference.Generation.AttentionMode.Dense, o.Attention);
        Assert.Equal((0.9, 0.05, 512, 8, 1L << 30, 300), (o.Gamma, o.Tau, o.MinBudget, o.QueueCapacity, o.PrefixCacheBytes, o.MaxOutputTokens));
    }

    [Fact]
    public async Task Invalid_options_fail_the_host_start_naming_each_limit()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddFlexPrefillChatCompletion(o =>
        {
            o.ModelPath = "/no/such/folder";
            o.Device = "tpu";
            o.Gamma = 1.5;
            o.Tau = -0.1;
            o.QueueCapacity = 0;
            o.MaxContextTokens = 256;
            o.MaxOutputTokens = 512;
            o.NativeLibraryPath = "/no/libflexprefill.so";
        });
        using var host = builder.Build();

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("FlexPrefill:ModelPath '/no/such/folder' is not a directory", e.Failures);
        Assert.Contains("FlexPrefill:Device is 'tpu'; it must be 'cpu', 'cuda' or 'cuda:N'", e.Failures);
        Assert.Contains("FlexPrefill:Gamma is 1.5; it must be in (0, 1]", e.Failures);
        Assert.Contains("FlexPrefill:Tau is -0.1; it must be in [0, 1]", e.Failures);
        Assert.Contains("FlexPrefill:QueueCapacity is 0; it must be ≥ 1", e.Failures);
        Assert.Contains("FlexPrefill:MaxOutputTokens is 512; it must be below MaxContextTokens (256)", e.Failures);
        Assert.Contains("FlexPrefill:NativeLibraryPath '/no/libflexprefill.so' is not a file", e.Failures);
    }

    [Fact]
    public void Without_a_host_the_options_are_validated_when_the_model_is_first_needed()
    {
        var services = new ServiceCollection();
        services.AddFlexPrefillChatCompletion(o => o.ModelPath = "");
        using var provider = services.BuildServiceProvider();

        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IChatCompletionService>());

        Assert.Contains("FlexPrefill:ModelPath is required: the Hugging Face model folder", e.Failures);
    }

    [Fact]
    public async Task Valid_options_start_the_host_without_loading_the_model()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        var builder = Host.CreateApplicationBuilder();
        builder.Services.UseModel(model);
        builder.Services.AddFlexPrefillChatCompletion(o => { o.ModelPath = Scripted.ModelFolder; o.Device = "cpu"; });
        using var host = builder.Build();

        await host.StartAsync(Ct);
        await host.StopAsync(Ct);

        Assert.False(host.Services.GetRequiredService<FlexPrefillModelHost>().IsLoaded);
    }

    [Fact]
    public void A_load_failure_surfaces_the_loaders_message()
    {
        var services = new ServiceCollection();
        services.AddSingleton(new FlexPrefillModelLoader((o, _) => throw new ModelLoadException($"{o.ModelPath}/config.json: missing")));
        services.AddFlexPrefillChatClient(o => o.ModelPath = Scripted.ModelFolder);
        using var provider = services.BuildServiceProvider();

        var e = Assert.Throws<ModelLoadException>(() => provider.GetRequiredService<IChatClient>());

        Assert.EndsWith("config.json: missing", e.Message);
    }
}
