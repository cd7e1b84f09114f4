using static TorchSharp.torch;

namespace FlexPrefill.Inference.Generation;

/// <summary>
/// Picks the next token from float32 logits [V]: repetition penalty, then greedy (temperature 0) or temperature,
/// top-k, top-p and min-p in transformers' order, then a draw from a seeded generator (same seed, same tokens).
/// </summary>
internal sealed class Sampler
{
    readonly GenerationOptions _options;
    ulong _state;

    public Sampler(GenerationOptions options, long? seed = null)
    {
        _options = options;
        _state = (ulong)(seed ?? options.Seed ?? Random.Shared.NextInt64());
    }

    /// <param name="logits">[V] float32, on any device.</param>
    /// <param name="seen">Tokens of the prompt and the output so far (for the repetition penalty).</param>
    public int Sample(Tensor logits, IReadOnlyCollection<int> seen)
    {
        using var scope = NewDisposeScope();
        if (_options.RepetitionPenalty != 1.0 && seen.Count > 0)
        {
            // transformers: a seen token's positive logit is divided by the penalty, a negative one multiplied
            Tensor ids = tensor(seen.Select(i => (long)i).ToArray(), device: logits.device);
            Tensor picked = logits.index_select(0, ids);
            Tensor penalised = where(picked > 0, picked / _options.RepetitionPenalty, picked * _options.RepetitionPenalty);
            logits = logits.scatter(0, ids, penalised);
        }
        if (_options.Temperature <= 0) return (int)logits.argmax().item<long>();

        logits = logits / _options.Temperature;
        long vocab = logits.shape[0];
        if (_options.TopK > 0 && _options.TopK < vocab)
        {
            Tensor kth = logits.topk(_options.TopK).values[_options.TopK - 1];
            logits = logits.masked_fill(logits < kth, double.NegativeInfinity);
        }
        Tensor probs = logits.softmax(0);
        if (_options.TopP < 1.0)
        {
            var (sorted, order) = probs.sort(descending: true);
            Tensor massBefore = sorted.cumsum(0) - sorted;
            Tensor kept = sorted.masked_fill(massBefore >= _options.TopP, 0.0); // the top token always stays
            probs = zeros_like(probs).scatter(0, order, kept);
        }
        if (_options.MinP > 0)
            probs = probs.masked_fill(probs < probs.max() * _options.MinP, 0.0);

        float[] p = probs.to(ScalarType.Float32).cpu().data<float>().ToArray();
        return Draw(p);
    }

    int Draw(float[] weights)
    {
        double total = 0;
        foreach (float w in weights) total += w;
        double u = NextUnit() * total, cumulative = 0;
        int last = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] <= 0) continue;
            cumulative += weights[i];
            last = i;
            if (u < cumulative) return i;
        }
        return last; // rounding left u at the very top
    }

    // SplitMix64: a fixed, documented generator, so a seed means the same draws on every runtime.
    double NextUnit()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
