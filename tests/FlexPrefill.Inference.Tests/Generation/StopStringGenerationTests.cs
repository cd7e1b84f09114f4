using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Loading;
using FlexPrefill.Inference.Models;
using static TorchSharp.torch;
using Generator = FlexPrefill.Inference.Generation.Generator;

namespace FlexPrefill.Inference.Tests.Generation;

public class StopStringGenerationTests
{
    static readonly ModelConfig Tiny = new()
    {
        ModelType = "llama", VocabSize = 61, HiddenSize = 16, IntermediateSize = 24, NumLayers = 1, NumHeads = 2,
        NumKvHeads = 1, MaxPositionEmbeddings = 128,
    };

    sealed class WordDecoder : ITokenTextDecoder
    {
        public static string Text(int id) => $"w{id} ";
        public string Append(int tokenId) => Text(tokenId);
        public string Flush() => "";
    }

    static (List<GenerationUpdate> Updates, GenerationSummary Summary) Generate(Transformer model, int[] prompt, GenerationOptions options)
    {
        var updates = new List<GenerationUpdate>();
        var request = new GenerationRequest(prompt, options, new DenseAttention(), new HashSet<int>(), new WordDecoder());
        var summary = new Generator(model, null).Run(request, updates.Add, CancellationToken.None);
        return (updates, summary);
    }

    [Fact]
    public void A_stop_string_spanning_two_tokens_ends_generation_and_is_never_streamed()
    {
        using var model = new Transformer(Tiny, new RandomWeights(2, ScalarType.Float32, CPU, std: 0.3), ScalarType.Float32, CPU);
        int[] prompt = [5, 9, 13, 17];
        var (_, free) = Generate(model, prompt, new GenerationOptions { MaxTokens = 6 });
        int a = free.Tokens[0], b = free.Tokens[1], c = free.Tokens[2];
        string stop = WordDecoder.Text(b)[1..] + WordDecoder.Text(c)[..2]; // "<b> w<c's first digit>"

        var (updates, summary) = Generate(model, prompt, new GenerationOptions { MaxTokens = 6, StopSequences = [stop] });
        Assert.Equal(FinishReason.Stop, summary.FinishReason);
        Assert.Equal([a, b, c], summary.Tokens);
        Assert.Equal(WordDecoder.Text(a) + "w", summary.Text);
        Assert.Equal(summary.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.DoesNotContain(updates, u => u.Text.Contains(stop[..^1], StringComparison.Ordinal));
    }

    [Fact]
    public void Text_held_back_for_a_stop_string_that_never_completes_is_released_at_the_end()
    {
        using var model = new Transformer(Tiny, new RandomWeights(2, ScalarType.Float32, CPU, std: 0.3), ScalarType.Float32, CPU);
        int[] prompt = [5, 9, 13, 17];
        var (_, free) = Generate(model, prompt, new GenerationOptions { MaxTokens = 3 });
        string expected = string.Concat(free.Tokens.Select(WordDecoder.Text));
        // the last token's text begins this stop string, so it is held back until the output ends
        string stop = WordDecoder.Text(free.Tokens[^1]) + "never";
        var (updates, summary) = Generate(model, prompt, new GenerationOptions { MaxTokens = 3, StopSequences = [stop, "zzz"] });
        Assert.Equal(FinishReason.Length, summary.FinishReason);
        Assert.Equal(expected, summary.Text);
        Assert.Equal(expected, string.Concat(updates.Select(u => u.Text)));
        Assert.EndsWith(WordDecoder.Text(free.Tokens[^1]), updates[^1].Text); // released with the closing update
    }
}
