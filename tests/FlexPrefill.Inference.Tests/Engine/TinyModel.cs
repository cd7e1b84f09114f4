using System.Text.Json;
using FlexPrefill.Inference.Tests.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Engine;

/// <summary>Tiny random model folders written by the tests (config.json + safetensors), and their temp directories.</summary>
public sealed class TinyModel : IDisposable
{
    public string Directory { get; }
    public Dictionary<string, Tensor> Weights { get; } = new(StringComparer.Ordinal);

    public TinyModel(string directory) => Directory = directory;

    public static TinyModel Create(string modelType = "llama", int vocab = 97, int hidden = 32, int layers = 2, int heads = 4,
        int kvHeads = 2, int intermediate = 48, bool tie = false, int? headDim = null, bool attentionBias = false,
        ScalarType stored = ScalarType.Float32, int shards = 1, long seed = 7, string? ropeJson = null,
        int maxPositions = 256, int[]? eos = null, Action<Dictionary<string, object?>>? editConfig = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"fp-tiny-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(dir);
        var model = new TinyModel(dir);
        int d = headDim ?? hidden / heads;
        bool qkvBias = modelType == "qwen2" || attentionBias;
        bool oBias = modelType != "qwen2" && attentionBias;

        var config = new Dictionary<string, object?>
        {
            ["model_type"] = modelType,
            ["architectures"] = new[] { modelType == "qwen2" ? "Qwen2ForCausalLM" : modelType == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM" },
            ["vocab_size"] = vocab,
            ["hidden_size"] = hidden,
            ["intermediate_size"] = intermediate,
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = kvHeads,
            ["rms_norm_eps"] = 1e-5,
            ["max_position_embeddings"] = maxPositions,
            ["tie_word_embeddings"] = tie,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = eos ?? [2],
            ["rope_theta"] = 10000.0,
        };
        if (headDim is not null) config["head_dim"] = headDim;
        if (attentionBias) config["attention_bias"] = true;
        editConfig?.Invoke(config);
        string json = JsonSerializer.Serialize(config);
        if (ropeJson is not null) json = json[..^1] + "," + ropeJson + "}";
        File.WriteAllText(Path.Combine(dir, "config.json"), json);

        var g = new torch.Generator((ulong)seed);
        Tensor Rand(long[] shape, bool norm = false) =>
            norm ? (1 + 0.1 * randn(shape, generator: g)) : 0.1 * randn(shape, generator: g);
        void Add(string key, long[] shape, bool norm = false) => model.Weights[key] = Rand(shape, norm).to(stored);

        Add("model.embed_tokens.weight", [vocab, hidden]);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}";
            Add($"{p}.input_layernorm.weight", [hidden], norm: true);
            Add($"{p}.self_attn.q_proj.weight", [heads * d, hidden]);
            Add($"{p}.self_attn.k_proj.weight", [kvHeads * d, hidden]);
            Add($"{p}.self_attn.v_proj.weight", [kvHeads * d, hidden]);
            Add($"{p}.self_attn.o_proj.weight", [hidden, heads * d]);
            if (qkvBias)
            {
                Add($"{p}.self_attn.q_proj.bias", [heads * d]);
                Add($"{p}.self_attn.k_proj.bias", [kvHeads * d]);
                Add($"{p}.self_attn.v_proj.bias", [kvHeads * d]);
            }
            if (oBias) Add($"{p}.self_attn.o_proj.bias", [hidden]);
            Add($"{p}.post_attention_layernorm.weight", [hidden], norm: true);
            Add($"{p}.mlp.gate_proj.weight", [intermediate, hidden]);
            Add($"{p}.mlp.up_proj.weight", [intermediate, hidden]);
            Add($"{p}.mlp.down_proj.weight", [hidden, intermediate]);
        }
        Add("model.norm.weight", [hidden], norm: true);
        if (!tie) Add("lm_head.weight", [vocab, hidden]);

        var names = model.Weights.Keys.ToList();
        if (shards <= 1)
        {
            SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), names.Select(n => (n, model.Weights[n])));
        }
        else
        {
            var map = new Dictionary<string, string>();
            int per = (names.Count + shards - 1) / shards;
            for (int s = 0; s < shards; s++)
            {
                string file = $"model-{s + 1:00000}-of-{shards:00000}.safetensors";
                var part = names.Skip(s * per).Take(per).ToList();
                SafetensorsWriter.Write(Path.Combine(dir, file), part.Select(n => (n, model.Weights[n])));
                foreach (var n in part) map[n] = file;
            }
            File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
                JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map }));
        }
        return model;
    }

    public void Dispose()
    {
        foreach (var t in Weights.Values) t.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
