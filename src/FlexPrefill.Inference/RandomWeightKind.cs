namespace FlexPrefill.Inference;

/// <summary>Which random weights <see cref="LanguageModel.CreateRandom"/> draws (benchmarks and tests; no file).</summary>
public enum RandomWeightKind
{
    /// <summary>Every matrix normal(0, 0.02), norms 1. Attention is close to uniform, so FlexPrefill selects nearly every
    /// block: a benchmark of these weights measures the selection's cost, not what sparse prefill saves.</summary>
    Gaussian,

    /// <summary>The same draws plus a planted structure: a direction common to all tokens that RoPE turns into local
    /// attention (slash lines) in every head of every layer, and vertical stripes on the tokens whose id is a multiple of
    /// 1,024. Synthetic, and sparse the way trained LLMs are, so FlexPrefill selects few blocks; see docs/flexprefill.md.</summary>
    Structured,
}
