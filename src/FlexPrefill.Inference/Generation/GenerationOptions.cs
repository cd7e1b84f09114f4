using FlexPrefill.Inference.Attention;

namespace FlexPrefill.Inference.Generation;

/// <summary>Which attention runs the prefill.</summary>
public enum AttentionMode
{
    /// <summary>Dense causal attention (scaled dot-product attention).</summary>
    Dense,
    /// <summary>FlexPrefill block-sparse attention (native CUDA kernels when available, else the managed reference).</summary>
    FlexPrefill,
}

/// <summary>How one request is sampled and stopped. Every property has a safe default.</summary>
public sealed record GenerationOptions
{
    /// <summary>Maximum tokens to generate.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>Sampling temperature; 0 is greedy.</summary>
    public double Temperature { get; init; }

    /// <summary>Nucleus sampling mass in (0, 1]; 1 disables.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Keep only the K most likely tokens; 0 disables.</summary>
    public int TopK { get; init; }

    /// <summary>Drop tokens whose probability is below MinP times the top probability; 0 disables.</summary>
    public double MinP { get; init; }

    /// <summary>Penalty (≥ 1) applied to tokens already in the prompt or output; 1 disables.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Random seed; the same seed and inputs give the same output. Null picks one.</summary>
    public long? Seed { get; init; }

    /// <summary>Strings that end generation (not included in the output); may span several tokens.</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];

    /// <summary>Extra end-of-sequence token ids besides the model's own.</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>Attention used for the prefill of this request.</summary>
    public AttentionMode Attention { get; init; } = AttentionMode.Dense;

    /// <summary>FlexPrefill parameters when <see cref="Attention"/> is <see cref="AttentionMode.FlexPrefill"/>.</summary>
    public FlexPrefillOptions FlexPrefill { get; init; } = new();

    /// <summary>Reuse the KV cache of a cached prompt prefix (exact); false always prefills the whole prompt.</summary>
    public bool ReusePrefix { get; init; } = true;

    /// <summary>Receives prefill progress (layers and tokens done) on the inference thread; keep it cheap.</summary>
    public IProgress<PrefillProgress>? PrefillProgress { get; init; }
}

/// <summary>Prefill progress: <see cref="LayersDone"/> of <see cref="Layers"/> for the chunk being prefilled.</summary>
/// <param name="LayersDone">Layers finished.</param>
/// <param name="Layers">Layers in the model.</param>
/// <param name="TokensDone">Prompt tokens whose KV entries exist (cached prefix included).</param>
/// <param name="Tokens">Prompt tokens in all.</param>
public readonly record struct PrefillProgress(int LayersDone, int Layers, int TokensDone, int Tokens)
{
    /// <summary>Completed fraction in [0, 1].</summary>
    public double Fraction => Tokens == 0 ? 1 : (TokensDone + (double)(Tokens - TokensDone) * LayersDone / Math.Max(1, Layers)) / Tokens;
}

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>An end-of-sequence token or a stop sequence.</summary>
    Stop,
    /// <summary><see cref="GenerationOptions.MaxTokens"/> reached.</summary>
    Length,
    /// <summary>The caller cancelled.</summary>
    Cancelled,
}

/// <summary>One streamed step: new text (possibly empty while a UTF-8 character or stop string is incomplete).</summary>
/// <param name="Text">Text added by this step.</param>
/// <param name="TokenId">The sampled token.</param>
public sealed record GenerationUpdate(string Text, int TokenId)
{
    /// <summary>Set on the last update only.</summary>
    public GenerationSummary? Summary { get; init; }
}

/// <summary>Timings and counts of a finished request.</summary>
public sealed record GenerationSummary
{
    /// <summary>Tokens in the prompt.</summary>
    public required int PromptTokens { get; init; }
    /// <summary>Prompt tokens whose KV came from the prefix cache (not prefilled again).</summary>
    public required int CachedPromptTokens { get; init; }
    /// <summary>Tokens generated.</summary>
    public required int CompletionTokens { get; init; }
    /// <summary>Prefill wall time (the first token's logits included).</summary>
    public required double PrefillMilliseconds { get; init; }
    /// <summary>Decode throughput after the first token.</summary>
    public required double DecodeTokensPerSecond { get; init; }
    /// <summary>Why it ended.</summary>
    public required FinishReason FinishReason { get; init; }
    /// <summary>Name of the prefill attention backend.</summary>
    public required string AttentionBackend { get; init; }
    /// <summary>Per-head attention statistics of the prefill; null for dense.</summary>
    public PrefillStatistics? Attention { get; init; }
    /// <summary>Generated token ids.</summary>
    public required IReadOnlyList<int> Tokens { get; init; }
    /// <summary>Generated text (stop sequence removed).</summary>
    public required string Text { get; init; }
}
