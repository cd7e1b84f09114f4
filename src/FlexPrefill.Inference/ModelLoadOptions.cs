using FlexPrefill.Inference.Attention;
using TorchSharp;

namespace FlexPrefill.Inference;

/// <summary>How a model is loaded and served. Every property has a safe default.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Compute dtype; null picks bfloat16 on CUDA and float32 on the CPU. Stored weights are converted to it.</summary>
    public torch.ScalarType? DType { get; init; }

    /// <summary>Cap on prompt plus output tokens per request, below the model's own context; null for the model's.</summary>
    public int? MaxContextTokens { get; init; }

    /// <summary>Requests that may wait for the inference thread; one more is refused with <see cref="InferenceQueueFullException"/>.</summary>
    public int QueueCapacity { get; init; } = 16;

    /// <summary>
    /// Device bytes kept for the KV caches of earlier requests, so that a prompt sharing their leading tokens prefills
    /// only what is new (least recently used entries leave first). 0 turns prefix reuse off.
    /// </summary>
    public long PrefixCacheBytes { get; init; }

    /// <summary>Makes the FlexPrefill prefill backend (e.g. the native CUDA kernels); null uses the managed reference, <see cref="FlexPrefillAttention"/>.</summary>
    public Func<FlexPrefillOptions, IAttentionBackend>? FlexPrefillBackend { get; init; }

    /// <summary>
    /// Makes the decode attention (e.g. libflexprefill's flash-decoding kernel), once per model on its inference thread;
    /// the model disposes it with itself when it is <see cref="IDisposable"/>. Null runs the two matmuls of
    /// <see cref="DenseDecodeAttention"/>.
    /// </summary>
    public Func<IDecodeAttention>? DecodeAttention { get; init; }

    /// <summary>
    /// Makes the fused RMSNorm the model's norms use (e.g. libflexprefill's kernel), once per model on its inference
    /// thread; it may return null. Null (or a kernel that declines a call) runs the managed ops. The model does not
    /// dispose it.
    /// </summary>
    public Func<IRmsNormKernel?>? RmsNormKernel { get; init; }

    /// <summary>
    /// Makes the fused silu·mul the model's MLPs use (e.g. libflexprefill's kernel), once per model on its inference
    /// thread; it may return null. Null (or a kernel that declines a call) runs the managed ops. The model does not
    /// dispose it.
    /// </summary>
    public Func<ISiluMulKernel?>? SiluMulKernel { get; init; }
}
