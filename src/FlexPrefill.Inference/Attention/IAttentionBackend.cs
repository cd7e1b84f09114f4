using TorchSharp;

namespace FlexPrefill.Inference.Attention;

/// <summary>
/// Causal attention of a prefill chunk: the seam where FlexPrefill plugs in without touching the model file.
/// Decode (one query) never comes here; the model runs it dense on the KV cache.
/// </summary>
public interface IAttentionBackend
{
    /// <summary>Short name for logs and statistics ("dense", "flexprefill", "flexprefill-native").</summary>
    string Name { get; }

    /// <summary>
    /// Attention of the last <c>S</c> positions over all <c>T</c> keys, causal (query i sits at position T - S + i).
    /// </summary>
    /// <param name="q">Queries after RoPE: [B, Hq, S, D].</param>
    /// <param name="k">Keys after RoPE, cached prefix included: [B, Hkv, T, D], T ≥ S, Hq a multiple of Hkv.</param>
    /// <param name="v">Values: [B, Hkv, T, D].</param>
    /// <param name="call">Which layer is calling, and where per-head statistics go.</param>
    /// <returns>The attention output [B, Hq, S, D] in the dtype of <paramref name="q"/>.</returns>
    torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v, AttentionCall call);
}

/// <summary>Context of one <see cref="IAttentionBackend.Forward"/> call.</summary>
/// <param name="Layer">Index of the transformer layer.</param>
/// <param name="Statistics">Collects what the backend chose for each head; null when nobody asked.</param>
public sealed record AttentionCall(int Layer, PrefillStatistics? Statistics = null);
