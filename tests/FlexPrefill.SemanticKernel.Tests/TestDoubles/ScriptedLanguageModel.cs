using System.Runtime.CompilerServices;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.SemanticKernel.Tests.TestDoubles;

/// <summary>What the scripted model saw for one request.</summary>
public sealed record ScriptedRequest(string Prompt, IReadOnlyList<int> Tokens, GenerationOptions Options, int CachedPromptTokens);

/// <summary>
/// An <see cref="ILanguageModel"/> that answers from a script, behaving like the engine where the connector can
/// tell: one token per character (so prompt prefixes are token prefixes), a FIFO gate with a bounded queue, an
/// exact prefix cache (longest common prefix with earlier prompts), stop sequences, max tokens, cancellation,
/// context checks and prefill progress.
/// </summary>
public sealed class ScriptedLanguageModel(IChatTemplate template, Func<ScriptedRequest, string> script) : ILanguageModel
{
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly List<IReadOnlyList<int>> _cache = [];
    readonly List<ScriptedRequest> _requests = [];
    int _waiting;

    public string ModelId { get; init; } = "scripted-model";
    public int ContextLength { get; init; } = 8192;
    public IChatTemplate ChatTemplate => template;
    public int QueueCapacity { get; init; } = 16;
    /// <summary>Delay per generated chunk, so that requests overlap and cancellation can land mid-decode.</summary>
    public TimeSpan ChunkDelay { get; init; }
    /// <summary>Delay of the prefill, so cancellation can land mid-prefill.</summary>
    public TimeSpan PrefillDelay { get; init; }
    public int ChunkSize { get; init; } = 3;
    public bool Disposed { get; private set; }
    public int Running { get; private set; }
    public int MaxRunning { get; private set; }

    public IReadOnlyList<ScriptedRequest> Requests { get { lock (_requests) return [.. _requests]; } }
    public int QueuedRequests => Volatile.Read(ref _waiting);

    public IReadOnlyList<int> Encode(string text) => text.Select(c => (int)c).ToArray();
    public string Decode(IReadOnlyList<int> tokens) => new(tokens.Select(t => (char)t).ToArray());

    public IAsyncEnumerable<GenerationUpdate> GenerateAsync(IReadOnlyList<int> promptTokens, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        // Like the engine: both refusals happen before anything is queued, when the call is made.
        if (promptTokens.Count + options.MaxTokens > ContextLength)
            throw new ContextLengthExceededException(promptTokens.Count, options.MaxTokens, ContextLength);
        if (Interlocked.Increment(ref _waiting) > QueueCapacity)
        {
            Interlocked.Decrement(ref _waiting);
            throw new InferenceQueueFullException(QueueCapacity);
        }
        return RunAsync(promptTokens, options, cancellationToken);
    }

    async IAsyncEnumerable<GenerationUpdate> RunAsync(IReadOnlyList<int> promptTokens, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
        try
        {
            MaxRunning = Math.Max(MaxRunning, ++Running);
            int cached = 0;
            lock (_cache)
            {
                if (options.ReusePrefix)
                    foreach (var earlier in _cache) cached = Math.Max(cached, CommonPrefix(earlier, promptTokens));
                _cache.Add(promptTokens);
            }
            var request = new ScriptedRequest(Decode(promptTokens), promptTokens, options, cached);
            lock (_requests) _requests.Add(request);

            for (int layer = 1; layer <= 4; layer++)
            {
                if (PrefillDelay > TimeSpan.Zero) await Task.Delay(PrefillDelay / 4, cancellationToken).ConfigureAwait(false);
                options.PrefillProgress?.Report(new PrefillProgress(layer, 4, cached, promptTokens.Count));
            }

            string reply = script(request);
            var finish = FinishReason.Stop;
            int stopAt = options.StopSequences.Select(s => reply.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
            if (stopAt >= 0) reply = reply[..stopAt];
            if (reply.Length > options.MaxTokens) { reply = reply[..options.MaxTokens]; finish = FinishReason.Length; }

            for (int i = 0; i < reply.Length; i += ChunkSize)
            {
                if (ChunkDelay > TimeSpan.Zero) await Task.Delay(ChunkDelay, cancellationToken).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                string chunk = reply.Substring(i, Math.Min(ChunkSize, reply.Length - i));
                bool last = i + ChunkSize >= reply.Length;
                yield return new GenerationUpdate(chunk, chunk[0]) { Summary = last ? Summary(promptTokens.Count, cached, reply, finish, options) : null };
            }
            if (reply.Length == 0)
                yield return new GenerationUpdate("", 0) { Summary = Summary(promptTokens.Count, cached, reply, finish, options) };
        }
        finally
        {
            Running--;
            _gate.Release();
        }
    }

    static GenerationSummary Summary(int prompt, int cached, string reply, FinishReason finish, GenerationOptions options)
    {
        PrefillStatistics? stats = null;
        if (options.Attention == AttentionMode.FlexPrefill)
        {
            stats = new PrefillStatistics();
            stats.Add(new HeadStatistics(0, 0, AttentionPattern.VerticalSlash, 0.05, 25, 100));
        }
        return new GenerationSummary
        {
            PromptTokens = prompt,
            CachedPromptTokens = cached,
            CompletionTokens = reply.Length,
            PrefillMilliseconds = 12.5,
            DecodeTokensPerSecond = 40,
            FinishReason = finish,
            AttentionBackend = options.Attention == AttentionMode.FlexPrefill ? "flexprefill" : "dense",
            Attention = stats,
            Tokens = reply.Select(c => (int)c).ToArray(),
            Text = reply,
        };
    }

    static int CommonPrefix(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        int n = Math.Min(a.Count, b.Count), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }

    public void Dispose() => Disposed = true;
}
