namespace FlexPrefill.Inference.Attention;

/// <summary>FlexPrefill parameters (defaults from the paper; see docs/flexprefill.md).</summary>
public sealed record FlexPrefillOptions
{
    /// <summary>Attention mass the selected blocks must cover, in (0, 1]. 0.95 suits Llama-3.1, 0.9 Qwen2.</summary>
    public double Gamma { get; init; } = 0.95;

    /// <summary>JS-distance threshold below which a head uses the query-aware pattern; 0 disables query-aware.</summary>
    public double Tau { get; init; } = 0.1;

    /// <summary>Minimum tokens each head computes (rounded up to whole blocks).</summary>
    public int MinBudget { get; init; } = 1024;

    /// <summary>Optional cap in tokens on the vertical and slash counts; null for none.</summary>
    public int? MaxBudget { get; init; }

    /// <summary>Query and key block size.</summary>
    public int BlockSize { get; init; } = 128;

    /// <summary>
    /// Query-aware heads add the minimal vertical-slash set (K_v = K_s = min_budget blocks) to their query-aware blocks,
    /// as the published reference does (true, the default); false keeps the query-aware set alone (plus the diagonal),
    /// as the paper's Algorithm 1 shows.
    /// </summary>
    public bool QueryAwareUnionWithVerticalSlash { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first parameter out of range.</summary>
    public FlexPrefillOptions Validate()
    {
        if (!(Gamma > 0 && Gamma <= 1)) throw new ArgumentOutOfRangeException(nameof(Gamma), Gamma, "gamma must be in (0, 1]");
        if (!(Tau >= 0 && Tau <= 1)) throw new ArgumentOutOfRangeException(nameof(Tau), Tau, "tau must be in [0, 1]");
        if (MinBudget < 0) throw new ArgumentOutOfRangeException(nameof(MinBudget), MinBudget, "min_budget must be ≥ 0");
        if (MaxBudget is < 1) throw new ArgumentOutOfRangeException(nameof(MaxBudget), MaxBudget, "max_budget must be ≥ 1");
        if (BlockSize is not (16 or 32 or 64 or 128 or 256)) throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "block size must be 16, 32, 64, 128 or 256");
        return this;
    }
}
