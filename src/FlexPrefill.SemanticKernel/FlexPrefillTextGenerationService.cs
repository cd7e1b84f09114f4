using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.Services;
using Microsoft.SemanticKernel.TextGeneration;
using TextContent = Microsoft.SemanticKernel.TextContent;

namespace FlexPrefill.SemanticKernel;

/// <summary>
/// <see cref="ITextGenerationService"/> over a FlexPrefill chat client: the prompt is sent as one user message
/// through the model's chat template (instruction-tuned models answer prompts, they do not continue them). Tools
/// are never offered; everything else of the settings applies as in chat.
/// </summary>
public sealed class FlexPrefillTextGenerationService : ITextGenerationService
{
    readonly IChatClient _chatClient;

    /// <summary>Creates the service over <paramref name="chatClient"/> (normally a <see cref="FlexPrefillChatClient"/>).</summary>
    /// <param name="chatClient">The chat client that generates.</param>
    public FlexPrefillTextGenerationService(IChatClient chatClient)
    {
        ArgumentNullException.ThrowIfNull(chatClient);
        _chatClient = chatClient;
        var modelId = chatClient.GetService<ChatClientMetadata>()?.DefaultModelId;
        Attributes = new Dictionary<string, object?> { [AIServiceExtensions.ModelIdKey] = modelId };
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object?> Attributes { get; }

    string? ModelId => this.GetModelId();

    /// <inheritdoc/>
    public async Task<IReadOnlyList<TextContent>> GetTextContentsAsync(string prompt, PromptExecutionSettings? executionSettings = null, Kernel? kernel = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var response = await _chatClient.GetResponseAsync([new ChatMessage(ChatRole.User, prompt)], ToOptions(executionSettings), cancellationToken).ConfigureAwait(false);
        return [new TextContent(response.Text, ModelId, response, metadata: Metadata(response.AdditionalProperties, response.Usage))];
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<StreamingTextContent> GetStreamingTextContentsAsync(string prompt, PromptExecutionSettings? executionSettings = null, Kernel? kernel = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        await foreach (var update in _chatClient.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, prompt)], ToOptions(executionSettings), cancellationToken).ConfigureAwait(false))
        {
            var usage = update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details;
            yield return new StreamingTextContent(update.Text, modelId: ModelId, innerContent: update, metadata: Metadata(update.AdditionalProperties, usage));
        }
    }

    static ChatOptions ToOptions(PromptExecutionSettings? settings)
    {
        // No kernel: text generation offers no functions.
        var options = FlexPrefillPromptExecutionSettings.FromExecutionSettings(settings).ToChatOptions(kernel: null);
        options.Tools = null;
        options.ToolMode = null;
        return options;
    }

    static Dictionary<string, object?>? Metadata(AdditionalPropertiesDictionary? properties, UsageDetails? usage)
    {
        if (properties is null && usage is null) return null;
        Dictionary<string, object?> metadata = properties is null ? [] : new(properties);
        if (usage is not null) metadata["Usage"] = usage;
        return metadata;
    }
}
