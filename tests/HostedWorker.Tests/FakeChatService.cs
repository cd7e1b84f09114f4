using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace HostedWorker.Tests;

/// <summary>A chat service whose replies a test scripts; records every conversation it was given.</summary>
sealed class FakeChatService(Func<ChatHistory, CancellationToken, Task<ChatMessageContent>> reply) : IChatCompletionService
{
    public const string WarmupPrompt = "Hello.";

    /// <summary>Replies with text computed from the last message; reports statistics like the FlexPrefill connector.</summary>
    public static FakeChatService Replying(Func<string, string> answer) =>
        new((history, _) => Task.FromResult(Message(answer(history[^1].Content ?? ""))));

    public static ChatMessageContent Message(string text) =>
        new(AuthorRole.Assistant, text, metadata: new Dictionary<string, object?>
        {
            ["prefill_ms"] = 12.5,
            ["attention_density"] = 0.25,
            ["Usage"] = new UsageDetails { InputTokenCount = 1000, OutputTokenCount = 7 },
        });

    public ConcurrentQueue<ChatHistory> Calls { get; } = new();

    /// <summary>Calls other than the worker's warm-up request.</summary>
    public IEnumerable<ChatHistory> JobCalls => Calls.Where(h => h[^1].Content != WarmupPrompt);

    public IReadOnlyDictionary<string, object?> Attributes { get; } = new Dictionary<string, object?>();

    public async Task<IReadOnlyList<ChatMessageContent>> GetChatMessageContentsAsync(ChatHistory chatHistory, PromptExecutionSettings? executionSettings = null, Kernel? kernel = null, CancellationToken cancellationToken = default)
    {
        Calls.Enqueue(new ChatHistory(chatHistory));
        return [await reply(chatHistory, cancellationToken)];
    }

    public IAsyncEnumerable<StreamingChatMessageContent> GetStreamingChatMessageContentsAsync(ChatHistory chatHistory, PromptExecutionSettings? executionSettings = null, Kernel? kernel = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("the samples do not stream");
}
