using FlexPrefill.Inference.Tokenization;
using FlexPrefill.SemanticKernel.Tests.TestDoubles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Services;
using Microsoft.SemanticKernel.TextGeneration;

namespace FlexPrefill.SemanticKernel.Tests;

/// <summary>The connector through a real <see cref="Kernel"/>: prompts, chat history, plugins, streaming.</summary>
public sealed class KernelTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_prompt_function_answers_through_the_kernel()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.Llama31(), Scripted.Says("Paris is the capital of France."));
        var kernel = Scripted.Kernel(model);

        var result = await kernel.InvokePromptAsync("What is the capital of {{$country}}?", new KernelArguments { ["country"] = "France" }, cancellationToken: Ct);

        Assert.Equal("Paris is the capital of France.", result.GetValue<string>());
        Assert.Contains("What is the capital of France?", model.Requests.Single().Prompt);
    }

    [Fact]
    public async Task Chat_history_streams_through_the_chat_completion_service()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("Streaming works fine."));
        var kernel = Scripted.Kernel(model);
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        var history = new ChatHistory("You are terse.");
        history.AddUserMessage("Say something.");

        List<StreamingChatMessageContent> parts = [];
        await foreach (var part in chat.GetStreamingChatMessageContentsAsync(history, kernel: kernel, cancellationToken: Ct)) parts.Add(part);
        var whole = await chat.GetChatMessageContentAsync(history, kernel: kernel, cancellationToken: Ct);

        Assert.True(parts.Count > 3);
        Assert.Equal("Streaming works fine.", string.Concat(parts.Select(p => p.Content)));
        Assert.Equal("Streaming works fine.", whole.Content);
        Assert.Equal("scripted-model", chat.GetModelId());
        Assert.StartsWith("<|im_start|>system\nYou are terse.<|im_end|>", model.Requests[0].Prompt);
    }

    [Fact]
    public async Task Text_generation_sends_the_prompt_as_a_user_turn()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("generated text"));
        var kernel = Scripted.Kernel(model);
        var text = kernel.GetRequiredService<ITextGenerationService>();

        var result = await text.GetTextContentAsync("Write something.", new FlexPrefillPromptExecutionSettings { MaxTokens = 9 }, cancellationToken: Ct);
        List<string?> streamed = [];
        await foreach (var part in text.GetStreamingTextContentsAsync("Write something.", cancellationToken: Ct)) streamed.Add(part.Text);

        Assert.Equal("generated", result.Text);
        Assert.Equal(9, model.Requests[0].Options.MaxTokens);
        Assert.Equal("generated text", string.Concat(streamed));
        Assert.Equal("<|im_start|>user\nWrite something.<|im_end|>\n<|im_start|>assistant\n", model.Requests[0].Prompt);
        Assert.NotNull(result.Metadata?["Usage"]);
    }

    public static TheoryData<string, bool> Families => new() { { "llama", false }, { "llama", true }, { "qwen", false }, { "qwen", true } };

    [Theory]
    [MemberData(nameof(Families))]
    public async Task Auto_function_calling_invokes_the_plugin_and_answers_with_its_result(string family, bool streaming)
    {
        var template = family == "llama" ? RecordingTemplate.Llama31() : RecordingTemplate.Qwen();
        string ToolName() => template.LastTools[0].Name;
        var model = new ScriptedLanguageModel(template, r => r.Prompt.Contains("22 degrees and sunny in Paris")
            ? "It is 22 degrees and sunny in Paris."
            : family == "llama"
                ? $"{{\"name\": \"{ToolName()}\", \"parameters\": {{\"city\": \"Paris\"}}}}"
                : $"<tool_call>\n{{\"name\": \"{ToolName()}\", \"arguments\": {{\"city\": \"Paris\"}}}}\n</tool_call>");
        var kernel = Scripted.Kernel(model);
        var plugin = new WeatherPlugin();
        kernel.Plugins.AddFromObject(plugin, "weather");
        var settings = new FlexPrefillPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() };
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        var history = new ChatHistory();
        history.AddUserMessage("What is the weather in Paris?");

        string answer;
        if (streaming)
        {
            List<string?> parts = [];
            await foreach (var part in chat.GetStreamingChatMessageContentsAsync(history, settings, kernel, Ct)) parts.Add(part.Content);
            answer = string.Concat(parts);
        }
        else
        {
            answer = (await chat.GetChatMessageContentAsync(history, settings, kernel, Ct)).Content!;
        }

        Assert.Equal("It is 22 degrees and sunny in Paris.", answer);
        Assert.Equal(["Paris"], plugin.Calls);
        Assert.Equal(2, model.Requests.Count);
        Assert.Contains("The city", model.Requests[0].Prompt); // the parameter's description is in the rendered schema
        Assert.Contains("22 degrees and sunny in Paris", model.Requests[1].Prompt);
        Assert.Contains(history, m => m.Items.OfType<Microsoft.SemanticKernel.FunctionCallContent>().Any());
    }

    [Fact]
    public async Task Auto_function_calling_works_through_a_prompt_function()
    {
        var template = RecordingTemplate.Llama31();
        var model = new ScriptedLanguageModel(template, r => r.Prompt.Contains("22 degrees")
            ? "Sunny, 22 degrees."
            : $"{{\"name\": \"{template.LastTools[0].Name}\", \"parameters\": {{\"city\": \"Oslo\"}}}}");
        var kernel = Scripted.Kernel(model);
        var plugin = new WeatherPlugin();
        kernel.Plugins.AddFromObject(plugin, "weather");

        var result = await kernel.InvokePromptAsync("Weather in Oslo?", new KernelArguments(new FlexPrefillPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() }), cancellationToken: Ct);

        Assert.Equal("Sunny, 22 degrees.", result.GetValue<string>());
        Assert.Equal(["Oslo"], plugin.Calls);
    }

    [Fact]
    public async Task Execution_settings_map_onto_the_engine_through_the_kernel()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        var kernel = Scripted.Kernel(model);
        var settings = new FlexPrefillPromptExecutionSettings
        {
            Temperature = 0.5, TopP = 0.8, TopK = 20, Seed = 3, MaxTokens = 17, StopSequences = ["###"],
            FlexPrefillGamma = 0.9, FlexPrefillTau = 0.05, FlexPrefillMinBudget = 256, Attention = "flexprefill",
        };

        var result = await kernel.InvokePromptAsync("Hi", new KernelArguments(settings), cancellationToken: Ct);

        var o = model.Requests.Single().Options;
        Assert.Equal((0.5, 0.8, 20, 3L, 17), (Math.Round(o.Temperature, 5), Math.Round(o.TopP, 5), o.TopK, o.Seed!.Value, o.MaxTokens));
        Assert.Equal(["###", "<|im_end|>", "<|endoftext|>"], o.StopSequences);
        Assert.Equal((0.9, 0.05, 256), (o.FlexPrefill.Gamma, o.FlexPrefill.Tau, o.FlexPrefill.MinBudget));
        Assert.Equal(Inference.Generation.AttentionMode.FlexPrefill, o.Attention);
        var message = result.GetValue<ChatMessageContent>()!;
        Assert.Equal(0.25, message.Metadata![FlexPrefillMetadataKeys.AttentionDensity]);
        Assert.Equal("flexprefill", Assert.IsType<Inference.Generation.GenerationSummary>(message.InnerContent).AttentionBackend);
    }

    [Fact]
    public async Task Settings_written_for_another_connector_work_from_a_prompt_config()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        var kernel = Scripted.Kernel(model);
        var config = PromptTemplateConfig.FromJson("""
            { "template": "Hello", "execution_settings": { "default": { "temperature": 0.3, "max_tokens": 12, "attention": "dense", "flexprefill_gamma": 0.8 } } }
            """);

        await kernel.InvokeAsync(kernel.CreateFunctionFromPrompt(config), cancellationToken: Ct);

        var o = model.Requests.Single().Options;
        Assert.Equal(0.3, o.Temperature, 5);
        Assert.Equal(12, o.MaxTokens);
        Assert.Equal(Inference.Generation.AttentionMode.Dense, o.Attention);
        Assert.Equal(0.8, o.FlexPrefill.Gamma);
    }

    [Fact]
    public async Task A_chat_client_registered_on_the_kernel_invokes_kernel_functions()
    {
        var template = RecordingTemplate.ChatMl();
        var model = new ScriptedLanguageModel(template, r => r.Prompt.Contains("22 degrees")
            ? "Done."
            : $"<tool_call>\n{{\"name\": \"{template.LastTools[0].Name}\", \"arguments\": {{\"city\": \"Rome\"}}}}\n</tool_call>");
        var builder = Kernel.CreateBuilder();
        builder.Services.UseModel(model);
        builder.AddFlexPrefillChatClient(o => o.ModelPath = Scripted.ModelFolder, serviceId: "local");
        var kernel = builder.Build();
        var plugin = new WeatherPlugin();
        kernel.Plugins.AddFromObject(plugin, "weather");
        var client = kernel.Services.GetRequiredKeyedService<Microsoft.Extensions.AI.IChatClient>("local");

        var options = new FlexPrefillPromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() }.ToChatOptions(kernel);
        var response = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, "Weather in Rome?")], options, Ct);

        Assert.Equal("Done.", response.Text);
        Assert.Equal(["Rome"], plugin.Calls);
    }
}
