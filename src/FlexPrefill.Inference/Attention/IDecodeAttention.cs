using TorchSharp;

namespace FlexPrefill.Inference.Attention;

/// <summary>
/// Attention of a decode step: the one new position of each sequence over every cached key (it is the last position,
/// so there is no mask). The seam where a fused kernel (libflexprefill's flash-decoding) replaces the two matmuls of
/// <see cref="DenseDecodeAttention"/>, as <see cref="IAttentionBackend"/> is for prefill. Runs on the inference thread;
/// what it creates belongs to the caller's dispose scope.
/// </summary>
public interface IDecodeAttention
{
    /// <summary>Short name for logs and benchmarks ("dense", "native").</summary>
    string Name { get; }

    /// <summary>Attention of the query over all <c>T</c> cached positions, this one included.</summary>
    /// <param name="q">Query after RoPE: [B, Hq, 1, D].</param>
    /// <param name="keys">Keys after RoPE: [B, Hkv, T, D], Hq a multiple of Hkv; usually a view of the preallocated KV
    /// cache (row stride D, head stride capacity · D), read in place.</param>
    /// <param name="values">Values: [B, Hkv, T, D], likewise.</param>
    /// <returns>The attention output [B, Hq, 1, D] in the dtype of <paramref name="q"/>.</returns>
    torch.Tensor Forward(torch.Tensor q, torch.Tensor keys, torch.Tensor values);
}
