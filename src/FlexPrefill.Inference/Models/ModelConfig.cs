using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FlexPrefill.Inference.Models;

/// <summary>Rotary embedding variants, named as in config.json's <c>rope_type</c>.</summary>
public enum RopeType
{
    /// <summary>Plain RoPE.</summary>
    Default,
    /// <summary>Positions divided by <see cref="RopeParameters.Factor"/>.</summary>
    Linear,
    /// <summary>Llama 3.1's frequency-dependent scaling.</summary>
    Llama3,
    /// <summary>YaRN (Qwen2.5's long-context setting): ramped interpolation plus an attention factor.</summary>
    Yarn,
}

/// <summary>Rotary embedding parameters, in the transformers 5.x <c>rope_parameters</c> vocabulary.</summary>
public sealed record RopeParameters
{
    /// <summary>The variant.</summary>
    public RopeType Type { get; init; } = RopeType.Default;
    /// <summary>Base wavelength θ.</summary>
    public double Theta { get; init; } = 10000.0;
    /// <summary>Context scaling factor (linear, llama3, yarn).</summary>
    public double Factor { get; init; } = 1.0;
    /// <summary>Context length the model was pretrained with (llama3, yarn).</summary>
    public int? OriginalMaxPositionEmbeddings { get; init; }
    /// <summary>llama3: wavelengths above original / low_freq_factor are divided by the factor.</summary>
    public double LowFreqFactor { get; init; } = 1.0;
    /// <summary>llama3: wavelengths below original / high_freq_factor are kept.</summary>
    public double HighFreqFactor { get; init; } = 4.0;
    /// <summary>yarn: multiplier of cos/sin; null derives it from the factor (0.1 ln(factor) + 1).</summary>
    public double? AttentionFactor { get; init; }
    /// <summary>yarn: rotations where the ramp starts (extrapolation side).</summary>
    public double BetaFast { get; init; } = 32;
    /// <summary>yarn: rotations where the ramp ends (interpolation side).</summary>
    public double BetaSlow { get; init; } = 1;
    /// <summary>yarn: DeepSeek-style mscale (used with <see cref="MScaleAllDim"/>).</summary>
    public double? MScale { get; init; }
    /// <summary>yarn: DeepSeek-style mscale_all_dim.</summary>
    public double? MScaleAllDim { get; init; }
    /// <summary>yarn: round the correction range to whole dimensions (transformers' default).</summary>
    public bool Truncate { get; init; } = true;
}

/// <summary>
/// A decoder-only transformer's shape, read once from config.json (Llama, Qwen2, Mistral); variants are flags.
/// Both the transformers 4.x (<c>rope_theta</c>, <c>rope_scaling</c>) and 5.x (<c>rope_parameters</c>) forms are read.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>config.json's <c>model_type</c>: llama, qwen2 or mistral.</summary>
    public required string ModelType { get; init; }
    /// <summary>Vocabulary size V (rows of the embedding).</summary>
    public required int VocabSize { get; init; }
    /// <summary>Model width.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Width of the feed-forward's hidden layer.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Transformer layers.</summary>
    public required int NumLayers { get; init; }
    /// <summary>Query heads Hq.</summary>
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads Hkv (Hq for multi-head attention).</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>config.json's <c>head_dim</c> when present; null means hidden / heads.</summary>
    public int? ExplicitHeadDim { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>Positions the model was configured for (<c>max_position_embeddings</c>).</summary>
    public int MaxPositionEmbeddings { get; init; } = 4096;
    /// <summary>Mistral's sliding window; null when attention is global. Contexts are limited to it (exact there).</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>lm_head shares the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>q_proj, k_proj and v_proj have a bias (Qwen2 always; Llama when <c>attention_bias</c>).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>o_proj has a bias (Llama's <c>attention_bias</c>; never Qwen2).</summary>
    public bool OutputBias { get; init; }
    /// <summary>gate/up/down projections have a bias (<c>mlp_bias</c>).</summary>
    public bool MlpBias { get; init; }
    /// <summary>Rotary embedding.</summary>
    public RopeParameters Rope { get; init; } = new();
    /// <summary>config.json's <c>bos_token_id</c>.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>config.json's <c>eos_token_id</c> (one or several).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Per-head width D.</summary>
    public int HeadDim => ExplicitHeadDim ?? HiddenSize / NumHeads;

    /// <summary>Query heads per key/value head, G = Hq / Hkv.</summary>
    public int KvGroups => NumHeads / NumKvHeads;

    /// <summary>Most positions one sequence may use: max_position_embeddings, or the sliding window when smaller.</summary>
    public int ContextLength => SlidingWindow is int w && w < MaxPositionEmbeddings ? w : MaxPositionEmbeddings;

    static readonly string[] SupportedTypes = ["llama", "qwen2", "mistral"];

    /// <summary>Reads <paramref name="path"/> (a config.json).</summary>
    /// <exception cref="ModelLoadException">The file is missing, not JSON, lacks a field, or names another architecture.</exception>
    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found (a Hugging Face model folder has a config.json)");
        JsonObject root;
        try { root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new ModelLoadException($"{path}: not valid JSON ({e.Message})", e); }
        return Parse(root, path);
    }

    /// <summary>Reads a config.json document; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(JsonObject root, string source = "config.json")
    {
        string modelType = Str(root, "model_type", source) ?? throw new ModelLoadException($"{source}: no \"model_type\"; expected one of {string.Join(", ", SupportedTypes)}");
        if (!SupportedTypes.Contains(modelType))
            throw new ModelLoadException($"{source}: model_type \"{modelType}\" is not supported; expected one of {string.Join(", ", SupportedTypes)}");

        int heads = Int(root, "num_attention_heads", source) ?? throw Missing(source, "num_attention_heads");
        int hidden = Int(root, "hidden_size", source) ?? throw Missing(source, "hidden_size");
        int? headDim = Int(root, "head_dim", source);
        int kvHeads = Int(root, "num_key_value_heads", source) ?? heads;
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new ModelLoadException($"{source}: num_attention_heads {heads} must be a positive multiple of num_key_value_heads {kvHeads}");
        if (headDim is null && hidden % heads != 0)
            throw new ModelLoadException($"{source}: hidden_size {hidden} is not divisible by num_attention_heads {heads} and there is no head_dim");

        bool qwen = modelType == "qwen2";
        bool attentionBias = Bool(root, "attention_bias", source) ?? false;
        bool? slidingOn = Bool(root, "use_sliding_window", source);
        int? window = Int(root, "sliding_window", source);
        if (qwen && slidingOn != true) window = null; // Qwen2 writes a window it does not use unless use_sliding_window

        var config = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = Int(root, "vocab_size", source) ?? throw Missing(source, "vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = Int(root, "intermediate_size", source) ?? throw Missing(source, "intermediate_size"),
            NumLayers = Int(root, "num_hidden_layers", source) ?? throw Missing(source, "num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            ExplicitHeadDim = headDim,
            RmsNormEps = Dbl(root, "rms_norm_eps", source) ?? 1e-6,
            MaxPositionEmbeddings = Int(root, "max_position_embeddings", source) ?? 4096,
            SlidingWindow = window,
            TieWordEmbeddings = Bool(root, "tie_word_embeddings", source) ?? false,
            AttentionBias = qwen || attentionBias,
            OutputBias = !qwen && attentionBias,
            MlpBias = Bool(root, "mlp_bias", source) ?? false,
            BosTokenId = Int(root, "bos_token_id", source),
            EosTokenIds = IntList(root["eos_token_id"]),
        };
        return config with { Rope = ParseRope(root, config, source) };
    }

    static RopeParameters ParseRope(JsonObject root, ModelConfig config, string source)
    {
        // 5.x: everything in rope_parameters; 4.x: rope_theta beside an optional rope_scaling ("type" or "rope_type").
        var p = root["rope_parameters"] as JsonObject ?? root["rope_scaling"] as JsonObject;
        double theta = (p is null ? null : Dbl(p, "rope_theta", source)) ?? Dbl(root, "rope_theta", source) ?? 10000.0;
        string typeName = (p is null ? null : Str(p, "rope_type", source) ?? Str(p, "type", source)) ?? "default";
        RopeType type = typeName switch
        {
            "default" => RopeType.Default,
            "linear" => RopeType.Linear,
            "llama3" => RopeType.Llama3,
            "yarn" => RopeType.Yarn,
            _ => throw new ModelLoadException($"{source}: rope type \"{typeName}\" is not supported; expected default, linear, llama3 or yarn"),
        };
        if (p is null || type == RopeType.Default) return new RopeParameters { Theta = theta };

        // transformers moves original_max_position_embeddings into the rope parameters, defaulting to max_position_embeddings.
        int original = Int(p, "original_max_position_embeddings", source)
            ?? Int(root, "original_max_position_embeddings", source) ?? config.MaxPositionEmbeddings;
        double? factor = Dbl(p, "factor", source);
        if (factor is null && type == RopeType.Yarn) factor = (double)config.MaxPositionEmbeddings / original;
        if (factor is null) throw new ModelLoadException($"{source}: rope type \"{typeName}\" needs a \"factor\"");
        return new RopeParameters
        {
            Type = type,
            Theta = theta,
            Factor = factor.Value,
            OriginalMaxPositionEmbeddings = original,
            LowFreqFactor = Dbl(p, "low_freq_factor", source) ?? 1.0,
            HighFreqFactor = Dbl(p, "high_freq_factor", source) ?? 4.0,
            AttentionFactor = Dbl(p, "attention_factor", source),
            BetaFast = Dbl(p, "beta_fast", source) is double bf && bf != 0 ? bf : 32,
            BetaSlow = Dbl(p, "beta_slow", source) is double bs && bs != 0 ? bs : 1,
            MScale = Dbl(p, "mscale", source),
            MScaleAllDim = Dbl(p, "mscale_all_dim", source),
            Truncate = Bool(p, "truncate", source) ?? true,
        };
    }

    static ModelLoadException Missing(string source, string field) => new($"{source}: required field \"{field}\" is missing");

    static JsonValue? Value(JsonObject o, string field, string source, string expected)
    {
        var node = o[field];
        if (node is null) return null;
        return node as JsonValue ?? throw new ModelLoadException($"{source}: \"{field}\" should be {expected}, found {node.ToJsonString()}");
    }

    static string? Str(JsonObject o, string field, string source) =>
        Value(o, field, source, "a string") is { } v ? (v.TryGetValue(out string? s) ? s : throw new ModelLoadException($"{source}: \"{field}\" should be a string, found {v.ToJsonString()}")) : null;

    // Through the JSON text: a value set in code (config["x"] = 5) holds an int, which TryGetValue<double> refuses.
    static double? Dbl(JsonObject o, string field, string source) =>
        Value(o, field, source, "a number") is { } v
            ? v.GetValueKind() == JsonValueKind.Number
                ? double.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)
                : throw new ModelLoadException($"{source}: \"{field}\" should be a number, found {v.ToJsonString()}")
            : null;

    static int? Int(JsonObject o, string field, string source)
    {
        double? d = Dbl(o, field, source);
        if (d is null) return null;
        if (d != Math.Floor(d.Value) || d > int.MaxValue || d < int.MinValue)
            throw new ModelLoadException($"{source}: \"{field}\" should be an integer, found {d}");
        return (int)d.Value;
    }

    static bool? Bool(JsonObject o, string field, string source) =>
        Value(o, field, source, "true or false") is { } v ? (v.TryGetValue(out bool b) ? b : throw new ModelLoadException($"{source}: \"{field}\" should be true or false, found {v.ToJsonString()}")) : null;

    static IReadOnlyList<int> IntList(JsonNode? node) => node switch
    {
        null => [],
        JsonArray a => a.Where(n => n is JsonValue).Select(n => n!.GetValue<int>()).ToArray(),
        JsonValue v when v.TryGetValue(out int i) => [i],
        _ => [],
    };
}
