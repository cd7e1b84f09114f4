using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Engine;

/// <summary>
/// A deliberately naive float64 forward pass (per-head loop, explicit mask, no cache, no SDPA, default rope) over the
/// weights a test wrote: an independent check of the engine's wiring of GQA, head_dim, biases and tied embeddings.
/// </summary>
public static class ReferenceForward
{
    public static double[,] Logits(TinyModel m, int[] tokens, int layers, int heads, int kvHeads, int headDim, double theta = 10000, double eps = 1e-5)
    {
        using var scope = NewDisposeScope();
        Tensor W(string key) => m.Weights[key].to(ScalarType.Float64);
        Tensor? B(string key) => m.Weights.TryGetValue(key, out var t) ? t.to(ScalarType.Float64) : null;
        Tensor Lin(Tensor x, string p) { var y = x.matmul(W(p + ".weight").t()); var b = B(p + ".bias"); return b is null ? y : y + b; }
        Tensor Norm(Tensor x, string key) => x / (x.pow(2).mean([-1], keepdim: true) + eps).sqrt() * W(key);

        int n = tokens.Length;
        Tensor x = W("model.embed_tokens.weight").index_select(0, tensor(tokens.Select(t => (long)t).ToArray()));
        var angles = new double[n, headDim / 2];
        for (int p = 0; p < n; p++)
            for (int i = 0; i < headDim / 2; i++)
                angles[p, i] = p * Math.Pow(theta, -2.0 * i / headDim);
        Tensor ang = tensor(angles.Cast<double>().ToArray(), [n, headDim / 2], ScalarType.Float64);
        Tensor cos = cat([ang.cos(), ang.cos()], 1), sin = cat([ang.sin(), ang.sin()], 1);
        Tensor Rotate(Tensor v) // v: [n, D]
        {
            Tensor a = v.narrow(1, 0, headDim / 2), b = v.narrow(1, headDim / 2, headDim / 2);
            return v * cos + cat([-b, a], 1) * sin;
        }
        Tensor mask = ones(n, n, dtype: ScalarType.Bool).tril().logical_not();

        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}";
            Tensor h = Norm(x, $"{p}.input_layernorm.weight");
            Tensor q = Lin(h, $"{p}.self_attn.q_proj"), k = Lin(h, $"{p}.self_attn.k_proj"), v = Lin(h, $"{p}.self_attn.v_proj");
            var outs = new List<Tensor>();
            for (int head = 0; head < heads; head++)
            {
                int kv = head / (heads / kvHeads);
                Tensor qh = Rotate(q.narrow(1, head * headDim, headDim));
                Tensor kh = Rotate(k.narrow(1, kv * headDim, headDim));
                Tensor vh = v.narrow(1, kv * headDim, headDim);
                Tensor scores = qh.matmul(kh.t()) / Math.Sqrt(headDim);
                outs.Add(scores.masked_fill(mask, double.NegativeInfinity).softmax(1).matmul(vh));
            }
            x = x + Lin(cat(outs, 1), $"{p}.self_attn.o_proj");
            Tensor h2 = Norm(x, $"{p}.post_attention_layernorm.weight");
            Tensor gate = Lin(h2, $"{p}.mlp.gate_proj");
            x = x + Lin(gate * gate.sigmoid() * Lin(h2, $"{p}.mlp.up_proj"), $"{p}.mlp.down_proj");
        }
        Tensor head0 = m.Weights.ContainsKey("lm_head.weight") ? W("lm_head.weight") : W("model.embed_tokens.weight");
        Tensor logits = Norm(x, "model.norm.weight").matmul(head0.t());
        double[] flat = logits.data<double>().ToArray();
        var result = new double[n, flat.Length / n];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(double));
        return result;
    }
}
