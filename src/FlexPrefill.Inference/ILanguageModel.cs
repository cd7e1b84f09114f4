using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Inference;

/// <summary>
/// What the connector and the samples need of a loaded model: tokenize, template, generate. <c>LanguageModel</c>
/// is the implementation; tests may script one.
/// </summary>
public interface ILanguageModel : IDisposable
{
    /// <summary>A name for logs and metadata (the model folder's name).</summary>
    string ModelId { get; }

    /// <summary>Most tokens (prompt plus output) one request may hold.</summary>
    int ContextLength { get; }

    /// <summary>The model's chat template.</summary>
    IChatTemplate ChatTemplate { get; }

    /// <summary>Token ids of <paramref name="text"/>; special tokens written as text (e.g. &lt;|eot_id|&gt;) become their ids.</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>Text of <paramref name="tokens"/>.</summary>
    string Decode(IReadOnlyList<int> tokens);

    /// <summary>Requests waiting for the inference thread (the running one excluded).</summary>
    int QueuedRequests { get; }

    /// <summary>
    /// Queues a request and streams its output. The last update carries the <see cref="GenerationSummary"/>.
    /// Throws <see cref="ContextLengthExceededException"/> when prompt plus max tokens exceed the context and
    /// <see cref="InferenceQueueFullException"/> when the queue is full, both before anything is queued.
    /// </summary>
    IAsyncEnumerable<GenerationUpdate> GenerateAsync(IReadOnlyList<int> promptTokens, GenerationOptions options, CancellationToken cancellationToken = default);
}

/// <summary>Prompt plus requested output do not fit the model's context.</summary>
public sealed class ContextLengthExceededException(int promptTokens, int maxTokens, int contextLength)
    : ArgumentException($"prompt has {promptTokens:N0} tokens and {maxTokens:N0} more were requested; the model's context is {contextLength:N0}")
{
    /// <summary>Tokens in the prompt.</summary>
    public int PromptTokens { get; } = promptTokens;
    /// <summary>Output tokens requested.</summary>
    public int MaxTokens { get; } = maxTokens;
    /// <summary>The context length.</summary>
    public int ContextLength { get; } = contextLength;
}

/// <summary>The request queue is at capacity; retry later or raise the queue capacity.</summary>
public sealed class InferenceQueueFullException(int capacity)
    : InvalidOperationException($"the inference queue is full ({capacity} requests waiting); retry later or raise the queue capacity")
{
    /// <summary>The queue's capacity.</summary>
    public int Capacity { get; } = capacity;
}

/// <summary>A model folder could not be loaded; the message names the file, the tensor and what was expected.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null) : Exception(message, inner);
