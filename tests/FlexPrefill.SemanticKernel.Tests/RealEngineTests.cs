using FlexPrefill.Inference;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Models;
using FlexPrefill.Inference.Tokenization;
using FlexPrefill.SemanticKernel.Tests.TestDoubles;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace FlexPrefill.SemanticKernel.Tests;

/// <summary>
/// The connector over the real engine (a tiny random Llama on the CPU): prefix reuse, cancellation, the queue and
/// the context check are the engine's own here, not a script's.
/// </summary>
public sealed class RealEngineTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static readonly ModelConfig Tiny = new()
    {
        ModelType = "llama", VocabSize = 256, HiddenSize = 32, IntermediateSize = 64, NumLayers = 2, NumHeads = 4,
        NumKvHeads = 2, MaxPositionEmbeddings = 4096, RmsNormEps = 1e-5, EosTokenIds = [],
    };

    static CharModel Model(int queueCapacity = 16) =>
        new(LanguageModel.CreateRandom(Tiny, new ModelLoadOptions { PrefixCacheBytes = 64 << 20, QueueCapacity = queueCapacity }, seed: 5));

    [Fact]
    public async Task A_second_question_over_the_same_document_prefills_only_the_new_tokens()
    {
        using var model = Model();
        var kernel = Scripted.Kernel(model);
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        string document = string.Join(' ', Enumerable.Repeat("It was the best of times, it was the worst of times.", 30));
        ChatHistory Ask(string question)
        {
            var history = new ChatHistory("Answer from the document.");
            history.AddUserMessage($"{document}\n\nQuestion: {question}");
            return history;
        }
        var settings = new FlexPrefillPromptExecutionSettings { MaxTokens = 4, Attention = "dense" };

        var first = await chat.GetChatMessageContentAsync(Ask("Which times?"), settings, kernel, Ct);
        var second = await chat.GetChatMessageContentAsync(Ask("How many times?"), settings, kernel, Ct);

        var usage1 = (UsageDetails)first.Metadata!["Usage"]!;
        var usage2 = (UsageDetails)second.Metadata!["Usage"]!;
        Assert.Equal(0, usage1.CachedInputTokenCount);
        Assert.True(usage2.CachedInputTokenCount >= document.Length, $"{usage2.CachedInputTokenCount} cached of {usage2.InputTokenCount}; the document has {document.Length} tokens");
        Assert.True(usage2.CachedInputTokenCount < usage2.InputTokenCount);
        Assert.Equal("dense", second.Metadata[FlexPrefillMetadataKeys.AttentionBackend]);
    }

    [Fact]
    public async Task Cancelling_during_prefill_or_decode_leaves_the_engine_serving()
    {
        using var model = Model();
        var client = Scripted.Client(model);

        using (var duringPrefill = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var options = new ChatOptions { MaxOutputTokens = 100, AdditionalProperties = new() { [FlexPrefillPromptExecutionSettings.PrefillProgressKey] = new Callback(_ => duringPrefill.Cancel()) } };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync(new string('p', 2000), options, duringPrefill.Token));
        }
        using (var duringDecode = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var options = new ChatOptions { MaxOutputTokens = 3900, AdditionalProperties = new() { [FlexPrefillPromptExecutionSettings.PrefillProgressKey] = new Callback(p => { if (p.LayersDone == p.Layers) duringDecode.CancelAfter(50); }) } };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync("Tell me a long story.", options, duringDecode.Token));
        }
        var after = await client.GetResponseAsync("Again.", new ChatOptions { MaxOutputTokens = 5 }, Ct);

        Assert.Equal(5, after.Usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, after.FinishReason);
        Assert.Equal(0, model.QueuedRequests);
    }

    [Fact]
    public async Task A_full_engine_queue_refuses_clearly_and_the_waiting_request_completes()
    {
        using var model = Model(queueCapacity: 1);
        var client = Scripted.Client(model);
        using var stopLong = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var decoding = new TaskCompletionSource();
        var longOptions = new ChatOptions { MaxOutputTokens = 3900, AdditionalProperties = new() { [FlexPrefillPromptExecutionSettings.PrefillProgressKey] = new Callback(p => { if (p.LayersDone == p.Layers) decoding.TrySetResult(); }) } };
        var running = client.GetResponseAsync("long", longOptions, stopLong.Token);
        await decoding.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        var waiting = client.GetResponseAsync("short", new ChatOptions { MaxOutputTokens = 3 }, Ct);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (model.QueuedRequests == 0 && DateTime.UtcNow < deadline) await Task.Delay(1, Ct);

        var e = await Assert.ThrowsAsync<InferenceQueueFullException>(() => client.GetResponseAsync("one too many", new ChatOptions { MaxOutputTokens = 3 }, Ct));
        stopLong.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        Assert.Equal(1, e.Capacity);
        Assert.Equal(3, (await waiting.WaitAsync(TimeSpan.FromSeconds(30), Ct)).Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Twenty_concurrent_requests_all_complete()
    {
        using var model = Model(queueCapacity: 20);
        var client = Scripted.Client(model);

        var replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => client.GetResponseAsync($"question {i}", new ChatOptions { MaxOutputTokens = 4 }, Ct)));

        Assert.All(replies, r => Assert.Equal(4, r.Usage!.OutputTokenCount));
    }

    [Fact]
    public async Task Prompt_and_max_tokens_over_the_context_fail_with_both_numbers()
    {
        using var model = Model();
        var client = Scripted.Client(model);

        var e = await Assert.ThrowsAsync<ContextLengthExceededException>(() => client.GetResponseAsync(new string('a', 3000), new ChatOptions { MaxOutputTokens = 2000 }, Ct));

        Assert.Equal((2000, 4096), (e.MaxTokens, e.ContextLength));
        Assert.Contains("the model's context is 4,096", e.Message);
    }

    sealed class Callback(Action<PrefillProgress> report) : IProgress<PrefillProgress>
    {
        public void Report(PrefillProgress value) => report(value);
    }

    /// <summary>The engine with one token per byte of text (the random model has no tokenizer) and the ChatML template.</summary>
    sealed class CharModel(LanguageModel model) : ILanguageModel
    {
        public string ModelId => model.ModelId;
        public int ContextLength => model.ContextLength;
        public IChatTemplate ChatTemplate { get; } = new ChatMlTemplate();
        public int QueuedRequests => model.QueuedRequests;
        public IReadOnlyList<int> Encode(string text) => text.Select(c => c % 256).ToArray();
        public string Decode(IReadOnlyList<int> tokens) => new(tokens.Select(t => (char)t).ToArray());
        public IAsyncEnumerable<GenerationUpdate> GenerateAsync(IReadOnlyList<int> promptTokens, GenerationOptions options, CancellationToken cancellationToken = default) =>
            model.GenerateAsync(promptTokens, options, cancellationToken);
        public void Dispose() => model.Dispose();
    }
}
