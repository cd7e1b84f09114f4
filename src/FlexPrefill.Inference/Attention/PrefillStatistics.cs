namespace FlexPrefill.Inference.Attention;

/// <summary>The attention pattern a FlexPrefill head used.</summary>
public enum AttentionPattern
{
    /// <summary>All causal blocks (dense fallback or dense backend).</summary>
    Dense,
    /// <summary>Vertical stripes plus slash diagonals chosen from the last query block's attention.</summary>
    VerticalSlash,
    /// <summary>Blocks chosen from the pooled query-key estimate (the head's estimate matched its true distribution).</summary>
    QueryAware,
}

/// <summary>What attention computed for one head of one layer during a prefill.</summary>
/// <param name="Layer">Transformer layer.</param>
/// <param name="Head">Query head.</param>
/// <param name="Pattern">Pattern used.</param>
/// <param name="JsDistance">sqrt(Jensen-Shannon divergence) between the estimated and the true block distribution; NaN when not estimated.</param>
/// <param name="ComputedBlocks">Blocks of the attention matrix computed.</param>
/// <param name="CausalBlocks">Blocks on or below the block diagonal: what dense causal attention computes.</param>
public sealed record HeadStatistics(int Layer, int Head, AttentionPattern Pattern, double JsDistance, long ComputedBlocks, long CausalBlocks)
{
    /// <summary>Computed blocks as a fraction of the causal blocks (1 = dense).</summary>
    public double DensityOfCausalBlocks => CausalBlocks == 0 ? 1.0 : (double)ComputedBlocks / CausalBlocks;
}

/// <summary>Per-head statistics of one prefill, filled by the attention backend layer by layer. Thread-safe for adds.</summary>
public sealed class PrefillStatistics
{
    readonly List<HeadStatistics> _heads = [];
    readonly List<int> _denseFallbacks = [];

    /// <summary>Records one head.</summary>
    public void Add(HeadStatistics head)
    {
        lock (_heads) _heads.Add(head);
    }

    /// <summary>Records that <paramref name="layer"/> ran dense attention although blocks were selected: the selection
    /// was too dense for the sparse kernel to be faster (its heads are then recorded as dense).</summary>
    public void AddDenseFallback(int layer)
    {
        lock (_heads) _denseFallbacks.Add(layer);
    }

    /// <summary>Layers that fell back to dense attention, in the order they ran.</summary>
    public IReadOnlyList<int> DenseFallbackLayers
    {
        get { lock (_heads) return _denseFallbacks.ToArray(); }
    }

    /// <summary>All heads recorded so far, in the order they were added.</summary>
    public IReadOnlyList<HeadStatistics> Heads
    {
        get { lock (_heads) return _heads.ToArray(); }
    }

    /// <summary>Computed blocks over causal blocks, summed over every recorded head (1 = dense; 1 when nothing was recorded).</summary>
    public double DensityOfCausalBlocks
    {
        get
        {
            lock (_heads)
            {
                long computed = 0, causal = 0;
                foreach (var h in _heads) { computed += h.ComputedBlocks; causal += h.CausalBlocks; }
                return causal == 0 ? 1.0 : (double)computed / causal;
            }
        }
    }

    /// <summary>Fraction of recorded heads that used <paramref name="pattern"/>.</summary>
    public double FractionOfHeads(AttentionPattern pattern)
    {
        lock (_heads) return _heads.Count == 0 ? 0 : (double)_heads.Count(h => h.Pattern == pattern) / _heads.Count;
    }
}
