using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Loading;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Models;

// The Llama family (Llama 2/3.x, Qwen2/2.5, Mistral) in the gpt-fast manner: one readable forward pass. Field names are
// the checkpoint keys (model.layers.0.self_attn.o_proj.weight …), so loading is a lookup; the two exceptions, qkv_proj
// and gate_up_proj (vLLM's names), are q/k/v_proj and gate/up_proj concatenated at load, one matmul instead of three
// and two. Shapes: B batch, S new positions, T cached positions (prefix included), Hq / Hkv query / key-value heads,
// D head width, V vocabulary.

/// <summary>The causal language model: the decoder stack plus lm_head. Prefill and decode are separate paths.</summary>
internal sealed class Transformer : nn.Module
{
    public readonly Decoder model;
    public readonly Linear lm_head;
    readonly Rope _rope;

    public ModelConfig Config { get; }
    public ScalarType DType { get; }
    public Device Device { get; }

    /// <summary>Attention of decode steps (and of one-token prefill chunks) on the KV cache.</summary>
    public IDecodeAttention DecodeAttention { get; init; } = new DenseDecodeAttention();

    /// <summary>The fused RMSNorm every norm of the model tries first (null: the managed ops).</summary>
    public IRmsNormKernel? RmsNormKernel
    {
        get => model.norm.Kernel;
        init
        {
            foreach (var block in model.layers)
            {
                block.input_layernorm.Kernel = value;
                block.post_attention_layernorm.Kernel = value;
            }
            model.norm.Kernel = value;
        }
    }

    /// <summary>The fused silu·mul every MLP of the model tries first (null: the managed ops).</summary>
    public ISiluMulKernel? SiluMulKernel
    {
        get => model.layers[0].mlp.Kernel;
        init
        {
            foreach (var block in model.layers) block.mlp.Kernel = value;
        }
    }

    public Transformer(ModelConfig config, IWeightSource weights, ScalarType dtype, Device device) : base(nameof(Transformer))
    {
        Config = config;
        DType = dtype;
        Device = device;
        model = new Decoder(config, weights);
        lm_head = config.TieWordEmbeddings
            ? Linear.Sharing(model.embed_tokens.weight) // tied: the same tensor, not a copy
            : new Linear(weights, "lm_head", config.HiddenSize, config.VocabSize, bias: false);
        _rope = new Rope(config, device);
        RegisterComponents();
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> [B, S] at positions cache.Length … cache.Length + S - 1 through every layer,
    /// attention through <paramref name="attention"/>, writing their keys and values into <paramref name="cache"/>.
    /// Returns float32 logits [B, R, V] for the rows <paramref name="logitRows"/> of this chunk (null: the last row).
    /// </summary>
    public Tensor Prefill(Tensor tokens, KvCache cache, IAttentionBackend attention, Tensor? logitRows = null,
        PrefillStatistics? statistics = null, Action<int>? layerDone = null, CancellationToken cancellationToken = default)
    {
        long start = cache.Length, length = tokens.shape[1];
        var (cos, sin) = _rope.CosSin(start, length, DType);
        Tensor x = model.embed_tokens.forward(tokens); // x: [B, S, hidden]
        for (int i = 0; i < model.layers.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // One scope per layer: a layer's intermediates die with it, so peak memory is one layer's, not all of them
            // (Llama-3.1-8B keeps ~11 MB per token otherwise: out of memory at 8K tokens on 80 GB).
            using (torch.NewDisposeScope())
            {
                Tensor next = model.layers[i].forward(x, cos, sin, cache, i, start, attention, statistics, DecodeAttention).MoveToOuterDisposeScope();
                x.Dispose();
                x = next;
            }
            layerDone?.Invoke(i + 1);
        }
        cache.Length = (int)(start + length);
        Tensor rows = logitRows is null ? x.narrow(1, length - 1, 1) : x.index_select(1, logitRows); // [B, R, hidden]
        return Logits(rows);
    }

    /// <summary>One new token per sequence, tokens [B, 1] at position cache.Length; <see cref="DecodeAttention"/> on the cache. Logits [B, V].</summary>
    public Tensor Decode(Tensor tokens, KvCache cache)
    {
        long position = cache.Length;
        var (cos, sin) = _rope.CosSin(position, 1, DType);
        Tensor x = model.embed_tokens.forward(tokens); // x: [B, 1, hidden]
        for (int i = 0; i < model.layers.Count; i++)
            x = model.layers[i].forward(x, cos, sin, cache, i, position, prefill: null, statistics: null, DecodeAttention);
        cache.Length = (int)position + 1;
        return Logits(x).squeeze(1);
    }

    Tensor Logits(Tensor hidden)
    {
        Tensor logits = lm_head.forward(model.norm.forward(hidden));
        return logits.dtype == ScalarType.Float32 ? logits : logits.to(ScalarType.Float32);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _rope.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Embedding, the layers, the final norm: checkpoint prefix "model".</summary>
internal sealed class Decoder : nn.Module
{
    public readonly Embedding embed_tokens;
    public readonly ModuleList<Block> layers;
    public readonly RmsNorm norm;

    public Decoder(ModelConfig config, IWeightSource weights) : base("model")
    {
        embed_tokens = new Embedding(weights, "model.embed_tokens", config.VocabSize, config.HiddenSize);
        layers = new ModuleList<Block>(Enumerable.Range(0, config.NumLayers).Select(i => new Block(config, weights, $"model.layers.{i}")).ToArray());
        norm = new RmsNorm(weights, "model.norm", config.HiddenSize, config.RmsNormEps);
        RegisterComponents();
    }
}

/// <summary>Pre-norm transformer block: attention and feed-forward, each added to the residual stream.</summary>
internal sealed class Block : nn.Module
{
    public readonly RmsNorm input_layernorm;
    public readonly Attention self_attn;
    public readonly RmsNorm post_attention_layernorm;
    public readonly FeedForward mlp;

    public Block(ModelConfig config, IWeightSource weights, string prefix) : base(prefix)
    {
        input_layernorm = new RmsNorm(weights, $"{prefix}.input_layernorm", config.HiddenSize, config.RmsNormEps);
        self_attn = new Attention(config, weights, $"{prefix}.self_attn");
        post_attention_layernorm = new RmsNorm(weights, $"{prefix}.post_attention_layernorm", config.HiddenSize, config.RmsNormEps);
        mlp = new FeedForward(config, weights, $"{prefix}.mlp");
        RegisterComponents();
    }

    /// <remarks>Each sublayer returns a new tensor, so the residual is added into it in place; x is left as it was.</remarks>
    public Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache, int layer, long start, IAttentionBackend? prefill, PrefillStatistics? statistics,
        IDecodeAttention decode)
    {
        Tensor h = self_attn.forward(input_layernorm.forward(x), cos, sin, cache, layer, start, prefill, statistics, decode).add_(x);
        return mlp.forward(post_attention_layernorm.forward(h)).add_(h);
    }
}

/// <summary>Grouped-query attention with rotary positions and a preallocated KV cache.</summary>
internal sealed class Attention : nn.Module
{
    public readonly Linear qkv_proj, o_proj;
    readonly int _heads, _kvHeads, _headDim;

    public Attention(ModelConfig config, IWeightSource weights, string prefix) : base(prefix)
    {
        _heads = config.NumHeads;
        _kvHeads = config.NumKvHeads;
        _headDim = config.HeadDim;
        qkv_proj = Linear.Fused(weights, $"{prefix}.qkv_proj", config.HiddenSize, config.AttentionBias,
            ($"{prefix}.q_proj", _heads * _headDim), ($"{prefix}.k_proj", _kvHeads * _headDim), ($"{prefix}.v_proj", _kvHeads * _headDim));
        o_proj = new Linear(weights, $"{prefix}.o_proj", _heads * _headDim, config.HiddenSize, config.OutputBias);
        RegisterComponents();
    }

    /// <summary>x [B, S, hidden] at positions start … start + S - 1; <paramref name="prefill"/> is null while decoding
    /// (<paramref name="decode"/> on the cache, as for a one-token chunk).</summary>
    public Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache, int layer, long start, IAttentionBackend? prefill, PrefillStatistics? statistics,
        IDecodeAttention decode)
    {
        long b = x.size(0), s = x.size(1);
        Tensor heads = qkv_proj.forward(x).view(b, s, -1, _headDim).transpose(1, 2);   // [B, Hq + 2·Hkv, S, D]
        Tensor[] qk_v = heads.split([_heads + _kvHeads, _kvHeads], dim: 1);
        Tensor[] qk = Rope.Apply(qk_v[0], cos, sin).split([_heads, _kvHeads], dim: 1); // q and k rotated in one go
        Tensor q = qk[0], k = qk[1], v = qk_v[1];                                      // q: [B, Hq, S, D]; k, v: [B, Hkv, S, D]
        var (keys, values) = cache.Write(layer, k, v, start); // keys, values: [B, Hkv, T, D], T = start + S

        Tensor y = prefill is null || s == 1
            ? decode.Forward(q, keys, values)
            : prefill.Forward(q, keys, values, new AttentionCall(layer, statistics));
        y = y.transpose(1, 2).reshape(b, s, _heads * _headDim); // y: [B, S, Hq·D]
        return o_proj.forward(y);
    }
}

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) · up(x)), gate and up in one matmul.</summary>
internal sealed class FeedForward : nn.Module
{
    public readonly Linear gate_up_proj, down_proj;

    public FeedForward(ModelConfig config, IWeightSource weights, string prefix) : base(prefix)
    {
        gate_up_proj = Linear.Fused(weights, $"{prefix}.gate_up_proj", config.HiddenSize, config.MlpBias,
            ($"{prefix}.gate_proj", config.IntermediateSize), ($"{prefix}.up_proj", config.IntermediateSize));
        down_proj = new Linear(weights, $"{prefix}.down_proj", config.IntermediateSize, config.HiddenSize, config.MlpBias);
        RegisterComponents();
    }

    /// <summary>The fused silu·mul tried first (null: the managed ops).</summary>
    public ISiluMulKernel? Kernel { get; set; }

    public Tensor forward(Tensor x)
    {
        Tensor gateUp = gate_up_proj.forward(x); // [B, S, 2·intermediate]: gate, then up
        return down_proj.forward(Kernel?.Forward(gateUp) ?? SiluMul(gateUp));
    }

    static Tensor SiluMul(Tensor gateUp)
    {
        Tensor[] gate_up = gateUp.chunk(2, dim: -1); // gate, up: [B, S, intermediate]
        return nn.functional.silu(gate_up[0]).mul_(gate_up[1]);
    }
}

/// <summary>RMSNorm as transformers computes it: normalise in float32, cast back, then scale.</summary>
internal sealed class RmsNorm : nn.Module
{
    public readonly Parameter weight;
    readonly double _eps;

    public RmsNorm(IWeightSource weights, string prefix, int size, double eps) : base(prefix)
    {
        weight = new Parameter(weights.Take($"{prefix}.weight", [size]), requires_grad: false);
        _eps = eps;
        RegisterComponents();
    }

    /// <summary>The fused kernel tried first (null: the managed ops below).</summary>
    public IRmsNormKernel? Kernel { get; set; }

    /// <remarks>In place where the tensor is this method's own; no casts when x is float32 already.</remarks>
    public Tensor forward(Tensor x)
    {
        if (Kernel?.Forward(x, weight, _eps) is { } fused) return fused;
        ScalarType dtype = x.dtype;
        Tensor x32 = dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
        Tensor normed = x32 * x32.pow(2).mean([-1], keepdim: true).add_(_eps).rsqrt_();
        return (dtype == ScalarType.Float32 ? normed : normed.to(dtype)).mul_(weight);
    }
}

/// <summary>y = x Wᵀ + b with W [out, in] as stored in the checkpoint.</summary>
internal sealed class Linear : nn.Module
{
    public readonly Parameter weight;
    public readonly Parameter? bias;

    public Linear(IWeightSource weights, string prefix, int inFeatures, int outFeatures, bool bias) : base(prefix)
    {
        weight = new Parameter(weights.Take($"{prefix}.weight", [outFeatures, inFeatures]), requires_grad: false);
        if (bias) this.bias = new Parameter(weights.Take($"{prefix}.bias", [outFeatures]), requires_grad: false);
        RegisterComponents();
    }

    Linear(string name, Tensor weight, Tensor? bias) : base(name)
    {
        this.weight = new Parameter(weight, requires_grad: false);
        if (bias is not null) this.bias = new Parameter(bias, requires_grad: false);
        RegisterComponents();
    }

    Linear(Parameter shared) : base("lm_head")
    {
        weight = shared; // not registered: named_parameters lists the tensor once, under its owner
    }

    /// <summary>
    /// One projection of the checkpoint's <paramref name="parts"/> (prefix, output features), their matrices (and biases)
    /// stacked along the output: [Σ out, in]. Each part is copied into the stacked matrix and released at once, so the
    /// weights are held once and loading holds one part more at most. Parts are taken in order, weight then bias.
    /// </summary>
    public static Linear Fused(IWeightSource weights, string name, int inFeatures, bool bias, params (string Prefix, int OutFeatures)[] parts)
    {
        using var scope = NewDisposeScope();
        long total = parts.Sum(p => (long)p.OutFeatures), row = 0;
        Tensor? stacked = null, stackedBias = null;
        foreach (var (prefix, outFeatures) in parts)
        {
            using (Tensor w = weights.Take($"{prefix}.weight", [outFeatures, inFeatures]))
            {
                stacked ??= empty([total, inFeatures], w.dtype, w.device);
                stacked.narrow(0, row, outFeatures).copy_(w);
            }
            if (bias)
            {
                using Tensor b = weights.Take($"{prefix}.bias", [outFeatures]);
                stackedBias ??= empty(total, b.dtype, b.device);
                stackedBias.narrow(0, row, outFeatures).copy_(b);
            }
            row += outFeatures;
        }
        return new Linear(name, stacked!.DetachFromDisposeScope(), stackedBias?.DetachFromDisposeScope());
    }

    /// <summary>A projection that reuses another module's matrix (tied embeddings).</summary>
    public static Linear Sharing(Parameter weight) => new(weight);

    public Tensor forward(Tensor x) => nn.functional.linear(x, weight, bias);
}

/// <summary>Token embedding: rows of a [V, hidden] matrix.</summary>
internal sealed class Embedding : nn.Module
{
    public readonly Parameter weight;

    public Embedding(IWeightSource weights, string prefix, int vocab, int hidden) : base(prefix)
    {
        weight = new Parameter(weights.Take($"{prefix}.weight", [vocab, hidden]), requires_grad: false);
        RegisterComponents();
    }

    /// <summary>tokens [B, S] (int64) → [B, S, hidden].</summary>
    public Tensor forward(Tensor tokens) => weight.index_select(0, tokens.reshape(-1)).view(tokens.shape[0], tokens.shape[1], -1);
}
