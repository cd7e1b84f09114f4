namespace FlexPrefill.SemanticKernel;

/// <summary>Keys of the per-response metadata (<c>ChatResponse.AdditionalProperties</c>, SK <c>Metadata</c>).</summary>
public static class FlexPrefillMetadataKeys
{
    /// <summary>Prefill wall time in milliseconds (double).</summary>
    public const string PrefillMilliseconds = "prefill_ms";

    /// <summary>Decode throughput after the first token (double).</summary>
    public const string DecodeTokensPerSecond = "decode_tokens_per_s";

    /// <summary>Computed attention blocks over causal blocks of the prefill, 1 for dense (double).</summary>
    public const string AttentionDensity = "attention_density";

    /// <summary>Prompt tokens whose KV came from the prefix cache (int).</summary>
    public const string CachedPromptTokens = "cached_prompt_tokens";

    /// <summary>Name of the prefill attention backend (string).</summary>
    public const string AttentionBackend = "attention_backend";

    /// <summary>Seconds from request to the first token, queueing included (double).</summary>
    public const string TimeToFirstTokenSeconds = "time_to_first_token_s";
}
