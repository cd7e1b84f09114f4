using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Models;

namespace FlexPrefill.Inference.Tests.Engine;

static class Run
{
    /// <summary>A 3-layer random Llama (hidden 32, 4 / 2 heads, vocabulary 101) that never stops before MaxTokens.</summary>
    public static readonly ModelConfig Tiny = new()
    {
        ModelType = "llama", VocabSize = 101, HiddenSize = 32, IntermediateSize = 48, NumLayers = 3, NumHeads = 4,
        NumKvHeads = 2, MaxPositionEmbeddings = 512, RmsNormEps = 1e-5, EosTokenIds = [],
    };

    public static async Task<(List<GenerationUpdate> Updates, GenerationSummary Summary)> Collect(IAsyncEnumerable<GenerationUpdate> stream)
    {
        var updates = new List<GenerationUpdate>();
        await foreach (var u in stream) updates.Add(u);
        var summary = updates[^1].Summary ?? throw new Xunit.Sdk.XunitException("the last update carries no summary");
        Assert.All(updates.SkipLast(1), u => Assert.Null(u.Summary));
        return (updates, summary);
    }

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static async Task<GenerationSummary> Generate(ILanguageModel model, int[] prompt, GenerationOptions options) =>
        (await Collect(model.GenerateAsync(prompt, options, Ct))).Summary;

    /// <summary>Generates from a prompt of <paramref name="promptLength"/> tokens on <see cref="Tiny"/> with the weights of
    /// <paramref name="seed"/>, once as loaded by default and once with <paramref name="options"/> (a kernel in one of
    /// the model's slots, say): the pair a slot's test compares.</summary>
    public static async Task<(GenerationSummary Plain, GenerationSummary With)> GenerateWithAndWithout(
        ModelLoadOptions options, int promptLength, int maxTokens, int seed)
    {
        int[] prompt = Prompt(promptLength, Tiny.VocabSize);
        var generation = new GenerationOptions { MaxTokens = maxTokens };
        GenerationSummary plain;
        using (var model = LanguageModel.CreateRandom(Tiny, seed: seed))
            plain = await Generate(model, prompt, generation);
        using (var model = LanguageModel.CreateRandom(Tiny, options, seed: seed))
            return (plain, await Generate(model, prompt, generation));
    }

    public static int[] Prompt(int length, int vocab, int seed = 1)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => r.Next(3, vocab)).ToArray();
    }
}
