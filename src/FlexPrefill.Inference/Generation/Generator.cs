using System.Diagnostics;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Models;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Generation;

/// <summary>Turns streamed token ids into text (a tokenizer's streaming decoder).</summary>
internal interface ITokenTextDecoder
{
    /// <summary>Text completed by <paramref name="tokenId"/> (empty while a UTF-8 character is incomplete).</summary>
    string Append(int tokenId);

    /// <summary>Whatever is left at the end.</summary>
    string Flush();
}

/// <summary>One request as the generator sees it.</summary>
/// <param name="Prompt">Prompt token ids.</param>
/// <param name="Options">Sampling and stopping.</param>
/// <param name="Attention">Prefill backend for this request.</param>
/// <param name="EosIds">Token ids that end generation.</param>
/// <param name="Decoder">Text of the output; null when the model has no tokenizer (the text stays empty).</param>
internal sealed record GenerationRequest(IReadOnlyList<int> Prompt, GenerationOptions Options, IAttentionBackend Attention,
    IReadOnlySet<int> EosIds, ITokenTextDecoder? Decoder);

/// <summary>
/// Prefill, then DecodeOne until a stop: eos, a stop string, max tokens or cancellation (checked between prefill
/// layers and between decode steps). Each step runs in its own dispose scope; only the KV cache outlives it.
/// Runs on the inference thread.
/// </summary>
internal sealed class Generator(Transformer model, PrefixCache? prefixCache)
{
    public GenerationSummary Run(GenerationRequest request, Action<GenerationUpdate> emit, CancellationToken cancellationToken)
    {
        var options = request.Options;
        var prompt = request.Prompt;
        var clock = Stopwatch.StartNew();
        var generated = new List<int>();
        var seen = new HashSet<int>(prompt);
        var sampler = new Sampler(options);
        var stops = new StopSequenceMatcher(options.StopSequences);
        var text = new System.Text.StringBuilder();
        var statistics = request.Attention is DenseAttention ? null : new PrefillStatistics();
        int capacity = prompt.Count + options.MaxTokens;
        var cache = new KvCache(model.Config, 1, capacity, model.DType, model.Device);
        using var input = empty([1, 1], ScalarType.Int64, model.Device).DetachFromDisposeScope(); // each decode step's token
        int reused = 0;
        double prefillMs = 0;
        var decodeClock = new Stopwatch();
        FinishReason? finish = null;
        string closingText = "";

        try
        {
            if (prefixCache is not null && options.ReusePrefix) reused = prefixCache.Reuse(prompt, cache);
            int next = PrefillAndSample(request, cache, reused, sampler, seen, statistics, cancellationToken);
            prefillMs = clock.Elapsed.TotalMilliseconds;
            decodeClock.Start();
            while (true)
            {
                generated.Add(next);
                seen.Add(next);
                string delta = "";
                bool eos = request.EosIds.Contains(next);
                if (eos) finish = FinishReason.Stop;
                else
                {
                    var (shown, stopped) = stops.Push(request.Decoder?.Append(next) ?? "");
                    delta = shown;
                    if (stopped) finish = FinishReason.Stop;
                }
                if (finish is null && generated.Count >= options.MaxTokens) finish = FinishReason.Length;
                if (finish is not null)
                {
                    if (eos || finish == FinishReason.Length) delta += Closing(request, stops); // no stop string cut the text
                    text.Append(delta);
                    decodeClock.Stop();
                    var summary = Summary(prompt.Count, reused, generated, prefillMs, decodeClock, finish.Value, request, statistics, text.ToString());
                    emit(new GenerationUpdate(delta, next) { Summary = summary });
                    return summary;
                }
                text.Append(delta);
                emit(new GenerationUpdate(delta, next));
                if (cancellationToken.IsCancellationRequested) break;
                next = DecodeAndSample(next, input, cache, sampler, seen);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // cancelled between prefill layers: the model is untouched, the partial cache is dropped below
        }
        finally
        {
            if (prefixCache is not null && cache.Length > 0) prefixCache.Add(prompt.Concat(generated).ToArray(), cache);
            else cache.Dispose();
        }

        if (generated.Count > 0) closingText = Closing(request, stops);
        text.Append(closingText);
        decodeClock.Stop();
        if (prefillMs == 0) prefillMs = clock.Elapsed.TotalMilliseconds;
        var cancelled = Summary(prompt.Count, reused, generated, prefillMs, decodeClock, FinishReason.Cancelled, request, statistics, text.ToString());
        emit(new GenerationUpdate(closingText, -1) { Summary = cancelled });
        return cancelled;
    }

    int PrefillAndSample(GenerationRequest request, KvCache cache, int reused, Sampler sampler, HashSet<int> seen,
        PrefillStatistics? statistics, CancellationToken cancellationToken)
    {
        var prompt = request.Prompt;
        var progress = request.Options.PrefillProgress;
        int layers = model.Config.NumLayers;
        progress?.Report(new PrefillProgress(0, layers, reused, prompt.Count));
        using var scope = NewDisposeScope();
        long[] ids = new long[prompt.Count - reused];
        for (int i = 0; i < ids.Length; i++) ids[i] = prompt[reused + i];
        Tensor tokens = tensor(ids, device: model.Device).unsqueeze(0); // [1, S]
        Tensor logits = model.Prefill(tokens, cache, request.Attention, logitRows: null, statistics,
            progress is null ? null : done => progress.Report(new PrefillProgress(done, layers, reused, prompt.Count)),
            cancellationToken); // [1, 1, V]
        return sampler.Sample(logits[0, 0], seen);
    }

    // input: [1, 1] int64 on the model's device, reused by every step: a fill, not a tensor made from an array and
    // copied to the device per token.
    int DecodeAndSample(int token, Tensor input, KvCache cache, Sampler sampler, HashSet<int> seen)
    {
        using var scope = NewDisposeScope();
        input.fill_(token);
        Tensor logits = model.Decode(input, cache); // [1, V]
        return sampler.Sample(logits[0], seen);
    }

    static string Closing(GenerationRequest request, StopSequenceMatcher stops)
    {
        string tail = request.Decoder?.Flush() ?? "";
        var (shown, _) = stops.Push(tail);
        return shown + stops.Flush();
    }

    static GenerationSummary Summary(int promptTokens, int reused, List<int> generated, double prefillMs, Stopwatch decodeClock,
        FinishReason finish, GenerationRequest request, PrefillStatistics? statistics, string text)
    {
        double decodeSeconds = decodeClock.Elapsed.TotalSeconds;
        return new GenerationSummary
        {
            PromptTokens = promptTokens,
            CachedPromptTokens = reused,
            CompletionTokens = generated.Count,
            PrefillMilliseconds = prefillMs,
            DecodeTokensPerSecond = generated.Count > 1 && decodeSeconds > 0 ? (generated.Count - 1) / decodeSeconds : 0,
            FinishReason = finish,
            AttentionBackend = request.Attention.Name,
            Attention = statistics,
            Tokens = generated.ToArray(),
            Text = text,
        };
    }
}
