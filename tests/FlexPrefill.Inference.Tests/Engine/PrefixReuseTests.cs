using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Models;

namespace FlexPrefill.Inference.Tests.Engine;

public class PrefixReuseTests
{
    static readonly ModelConfig Tiny = new()
    {
        ModelType = "llama", VocabSize = 101, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4,
        NumKvHeads = 1, MaxPositionEmbeddings = 512, RmsNormEps = 1e-5,
    };

    [Fact]
    public async Task A_prompt_extending_a_cached_one_prefills_only_its_new_tokens_and_generates_the_same()
    {
        using var cached = LanguageModel.CreateRandom(Tiny, new ModelLoadOptions { PrefixCacheBytes = 1 << 24 }, seed: 4);
        using var plain = LanguageModel.CreateRandom(Tiny, seed: 4);
        int[] first = Run.Prompt(20, 101, seed: 1);
        var turn1 = await Run.Generate(cached, first, new GenerationOptions { MaxTokens = 4 });
        Assert.Equal(0, turn1.CachedPromptTokens);

        // the next turn: the whole first exchange, then new tokens
        int[] second = first.Concat(turn1.Tokens).Concat(Run.Prompt(7, 101, seed: 2)).ToArray();
        var reused = await Run.Generate(cached, second, new GenerationOptions { MaxTokens = 6 });
        var fresh = await Run.Generate(plain, second, new GenerationOptions { MaxTokens = 6 });
        Assert.Equal(20 + 3, reused.CachedPromptTokens); // the last sampled token of turn 1 was never fed back
        Assert.Equal(0, fresh.CachedPromptTokens);
        Assert.Equal(fresh.Tokens, reused.Tokens);

        var off = await Run.Generate(cached, second, new GenerationOptions { MaxTokens = 6, ReusePrefix = false });
        Assert.Equal(0, off.CachedPromptTokens);
        Assert.Equal(fresh.Tokens, off.Tokens);
    }

    [Fact]
    public async Task A_prompt_that_diverges_reuses_only_the_common_part()
    {
        using var model = LanguageModel.CreateRandom(Tiny, new ModelLoadOptions { PrefixCacheBytes = 1 << 24 }, seed: 4);
        int[] a = Run.Prompt(16, 101, seed: 3);
        await Run.Generate(model, a, new GenerationOptions { MaxTokens = 1 });
        int[] b = a.Take(10).Concat(Run.Prompt(6, 101, seed: 5)).ToArray();
        var s = await Run.Generate(model, b, new GenerationOptions { MaxTokens = 1 });
        int common = 0;
        while (a[common] == b[common]) common++;
        Assert.Equal(common, s.CachedPromptTokens);
        // the same prompt again reuses all but its last token
        var again = await Run.Generate(model, b, new GenerationOptions { MaxTokens = 1 });
        Assert.Equal(b.Length - 1, again.CachedPromptTokens);
    }

    [Fact]
    public void The_cache_stays_within_its_byte_budget_evicting_the_least_recently_used()
    {
        using var prefix = new PrefixCache(capacityBytes: 3 * CacheBytes(10));
        for (int i = 0; i < 5; i++)
        {
            var kv = new KvCache(Tiny, 1, 10, TorchSharp.torch.ScalarType.Float32, TorchSharp.torch.CPU) { Length = 10 };
            prefix.Add(Enumerable.Range(100 * i, 10).ToArray(), kv);
        }
        Assert.Equal(3, prefix.Count);
        Assert.True(prefix.Bytes <= 3 * CacheBytes(10));
        using var target = new KvCache(Tiny, 1, 20, TorchSharp.torch.ScalarType.Float32, TorchSharp.torch.CPU);
        Assert.Equal(0, prefix.Reuse(Enumerable.Range(0, 12).ToArray(), target));     // the first entry was evicted
        Assert.Equal(10, prefix.Reuse(Enumerable.Range(400, 12).ToArray(), target));  // the newest is there, all of it
    }

    static long CacheBytes(int positions) => 2L * Tiny.NumLayers * Tiny.NumKvHeads * positions * Tiny.HeadDim * sizeof(float);
}
