namespace FlexPrefill.Cli.Bench;

/// <summary>Model shapes the benchmark builds with random weights, as the config.json a checkpoint would carry.</summary>
static class BenchmarkPresets
{
    public static readonly string[] Names = ["llama-3.1-8b", "decode-overhead", "tiny"];

    /// <summary>The config.json text of a preset.</summary>
    public static string ConfigJson(string name) => name switch
    {
        // Llama-3.1-8B: 32 layers, hidden 4096, 32 query / 8 KV heads of 128, FFN 14336, vocab 128256, llama3 rope.
        "llama-3.1-8b" => """
            {
              "architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256,
              "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "hidden_act": "silu",
              "rope_theta": 500000.0,
              "rope_scaling": { "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192 },
              "attention_bias": false, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
              "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]
            }
            """,
        // Llama-3.1-8B's 32 layers and 32 query / 8 KV heads at widths so small (hidden 128, head_dim 4, 5M parameters,
        // 20 MB in float32) that a CPU decode step costs what its TorchSharp calls cost: the per-token host overhead,
        // measured without a GPU.
        "decode-overhead" => """
            {
              "architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 4, "vocab_size": 2048,
              "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "hidden_act": "silu",
              "rope_theta": 500000.0, "attention_bias": false, "tie_word_embeddings": false, "torch_dtype": "float32",
              "bos_token_id": 1, "eos_token_id": 2
            }
            """,
        // A Llama of a few hundred thousand parameters: the same code path on CPU in CI.
        "tiny" => """
            {
              "architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
              "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "hidden_act": "silu",
              "rope_theta": 10000.0, "attention_bias": false, "tie_word_embeddings": true, "torch_dtype": "float32",
              "bos_token_id": 1, "eos_token_id": 2
            }
            """,
        _ => throw new UsageException($"unknown --config '{name}' (known: {string.Join(", ", Names)})"),
    };
}
