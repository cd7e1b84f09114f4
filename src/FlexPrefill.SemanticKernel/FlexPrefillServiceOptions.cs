using FlexPrefill.Inference.Generation;

namespace FlexPrefill.SemanticKernel;

/// <summary>
/// Load-time options of the FlexPrefill services, bindable from configuration (section <c>"FlexPrefill"</c> by
/// convention) and validated when the host starts. All FlexPrefill services of one container share one model.
/// </summary>
public sealed class FlexPrefillServiceOptions
{
    /// <summary>Conventional configuration section name.</summary>
    public const string SectionName = "FlexPrefill";

    /// <summary>Hugging Face model folder (config.json, *.safetensors, tokenizer.json). Required.</summary>
    public string ModelPath { get; set; } = "";

    /// <summary>Name reported as the model id; null uses the model folder's name.</summary>
    public string? ModelId { get; set; }

    /// <summary><c>"cuda"</c> (default), <c>"cuda:N"</c> or <c>"cpu"</c>.</summary>
    public string Device { get; set; } = "cuda";

    /// <summary><c>"bfloat16"</c>, <c>"float16"</c> or <c>"float32"</c>; null is bfloat16 on CUDA and float32 on CPU.</summary>
    public string? DType { get; set; }

    /// <summary>
    /// Run FlexPrefill and decode attention on libflexprefill's CUDA kernels when the library loads and sees a CUDA
    /// device (default true); otherwise, and for calls the kernels do not cover, the managed reference and the two
    /// decode matmuls run.
    /// </summary>
    public bool NativeKernels { get; set; } = true;

    /// <summary>Path of libflexprefill.so; null uses the FLEXPREFILL_NATIVE environment variable or the default search.</summary>
    public string? NativeLibraryPath { get; set; }

    /// <summary>Caps the context below the model's own (less KV cache memory); null keeps the model's.</summary>
    public int? MaxContextTokens { get; set; }

    /// <summary>Prefill attention of requests that do not choose one.</summary>
    public AttentionMode Attention { get; set; } = AttentionMode.FlexPrefill;

    /// <summary>Default FlexPrefill γ, in (0, 1].</summary>
    public double Gamma { get; set; } = 0.95;

    /// <summary>Default FlexPrefill τ, in [0, 1].</summary>
    public double Tau { get; set; } = 0.1;

    /// <summary>Default FlexPrefill minimum budget in tokens per head, ≥ 0.</summary>
    public int MinBudget { get; set; } = 1024;

    /// <summary>Requests that may wait for the inference thread; one more is refused with <c>InferenceQueueFullException</c>.</summary>
    public int QueueCapacity { get; set; } = 16;

    /// <summary>
    /// Device memory in bytes kept for the KV caches of earlier prompts, so that a prompt starting with the same tokens
    /// (the same document, a new question) prefills only what is new; least recently used first out; 0 disables.
    /// Default 2 GiB (a 32K-token prompt of an 8B Llama with a bf16 cache takes 4 GiB: raise it for long documents).
    /// </summary>
    public long PrefixCacheBytes { get; set; } = 2L << 30;

    /// <summary>Output tokens of a request that sets no <c>max_tokens</c> (capped to the context left).</summary>
    public int MaxOutputTokens { get; set; } = 512;

    /// <summary>Prompts with at least this many new (uncached) tokens log their prefill progress at Information level.</summary>
    public int LogPrefillProgressAboveTokens { get; set; } = 8192;
}
