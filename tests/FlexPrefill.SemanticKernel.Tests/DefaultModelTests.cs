using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace FlexPrefill.SemanticKernel.Tests;

/// <summary>
/// The whole path with the project's default model (models/default; FLEXPREFILL_TEST_MODEL names another folder),
/// loaded by the registration itself: LanguageModel.Load, the folder's tokenizer and chat template.
/// </summary>
public sealed class DefaultModelTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static string? DefaultModelFolder()
    {
        if (Environment.GetEnvironmentVariable("FLEXPREFILL_TEST_MODEL") is { Length: > 0 } chosen) return chosen;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "FlexPrefill.SemanticKernel.sln"))) continue;
            string folder = Path.Combine(dir.FullName, "models", "default");
            bool complete = File.Exists(Path.Combine(folder, "config.json")) && Directory.EnumerateFiles(folder, "*.safetensors").Any();
            return complete ? folder : null;
        }
        return null;
    }

    [Fact]
    public async Task The_default_model_answers_through_the_kernel_and_reuses_the_document_prefix()
    {
        string? folder = DefaultModelFolder();
        if (folder is null) Assert.Skip("models/default has no config.json and *.safetensors yet");
        var builder = Kernel.CreateBuilder();
        builder.AddFlexPrefillChatCompletion(o => { o.ModelPath = folder!; o.Device = "cpu"; o.Attention = Inference.Generation.AttentionMode.Dense; o.PrefixCacheBytes = 256 << 20; });
        using var provider = (ServiceProvider)builder.Services.BuildServiceProvider();
        var kernel = new Kernel(provider);
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        string document = string.Join(' ', Enumerable.Repeat("The harbour of Nantucket was full of ships that spring.", 20));
        ChatHistory Ask(string question)
        {
            var history = new ChatHistory("Answer from the document.");
            history.AddUserMessage($"{document}\n\nQuestion: {question}");
            return history;
        }
        var settings = new FlexPrefillPromptExecutionSettings { MaxTokens = 8 };

        var first = await chat.GetChatMessageContentAsync(Ask("What was full?"), settings, kernel, Ct);
        var second = await chat.GetChatMessageContentAsync(Ask("When?"), settings, kernel, Ct);

        var usage1 = (UsageDetails)first.Metadata!["Usage"]!;
        var usage2 = (UsageDetails)second.Metadata!["Usage"]!;
        Assert.InRange(usage1.OutputTokenCount!.Value, 1, 8);
        Assert.Equal(0, usage1.CachedInputTokenCount);
        Assert.True(usage2.CachedInputTokenCount > usage2.InputTokenCount / 2, $"{usage2.CachedInputTokenCount} of {usage2.InputTokenCount} prompt tokens cached");
        Assert.NotNull(first.Content);
    }
}
