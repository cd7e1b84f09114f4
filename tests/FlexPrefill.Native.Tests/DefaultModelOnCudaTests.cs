using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using static FlexPrefill.Tests.Shared.NeedlePrompts;

namespace FlexPrefill.Native.Tests;

/// <summary>
/// The product path on the GPU: the committed default model on CUDA (bf16), prefilled by the native kernels, answers
/// held-out needle questions exactly as the dense prefill does. GPU only: on the CPU emulator an 8K-16K prefill would
/// take hours. The dense fallback is off, so every layer runs the sparse kernel.
/// </summary>
[Collection("native library")]
public sealed class DefaultModelOnCudaTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(8192, 4)]
    [InlineData(16384, 4)]
    public async Task Native_FlexPrefill_answers_needle_prompts_like_dense_on_cuda(int length, int prompts)
    {
        var (path, _, emulated) = TestLibrary.KernelsOrSkip();
        if (emulated) Assert.Skip("needs the CUDA build of libflexprefill and a GPU (the emulator is far too slow for 8K-16K prompts)");
        var backends = new Dictionary<FlexPrefillOptions, NativeFlexPrefillAttention>();
        try
        {
            using var model = LanguageModel.Load(DefaultModelOrSkip(), new ModelLoadOptions
            {
                Device = "cuda",
                FlexPrefillBackend = o => backends.TryGetValue(o, out var b) ? b : backends[o] = new NativeFlexPrefillAttention(o, path) { DenseFallbackDensity = 1, DenseBelowTokens = 0 },
            });
            var haystack = HeldOutSentences();
            int denseFound = 0, flexFound = 0, runs = 0, agreeing = 0, compared = 0;
            for (int p = 0; p < prompts; p++)
            {
                var prompt = Prompt(model, haystack, length, p, prompts);
                string value = Needles[p].Value;
                var dense = await GenerateAsync(model, prompt, new GenerationOptions { MaxTokens = 24, Attention = AttentionMode.Dense, ReusePrefix = false });
                denseFound += dense.Text.Contains(value, StringComparison.Ordinal) ? 1 : 0;
                foreach (double gamma in new[] { 0.9, 0.95 })
                {
                    var flex = await GenerateAsync(model, prompt, new GenerationOptions
                    {
                        MaxTokens = 24,
                        Attention = AttentionMode.FlexPrefill,
                        FlexPrefill = new FlexPrefillOptions { Gamma = gamma },
                        ReusePrefix = false,
                    });
                    Assert.Equal("flexprefill-native", flex.AttentionBackend);
                    Assert.True(flex.Attention!.DensityOfCausalBlocks < 1, "every block computed: the sparse path was not exercised");
                    flexFound += flex.Text.Contains(value, StringComparison.Ordinal) ? 1 : 0;
                    int n = Math.Max(dense.Tokens.Count, flex.Tokens.Count);
                    compared += n;
                    agreeing += Enumerable.Range(0, n).Count(i => i < dense.Tokens.Count && i < flex.Tokens.Count && dense.Tokens[i] == flex.Tokens[i]);
                    runs++;
                    output.WriteLine($"{prompt.Count} tokens, γ {gamma}: dense \"{dense.Text}\" ({dense.PrefillMilliseconds:F0} ms), " +
                        $"native \"{flex.Text}\" ({flex.PrefillMilliseconds:F0} ms), density {flex.Attention.DensityOfCausalBlocks:P1}");
                }
            }
            double agreement = (double)agreeing / compared;
            output.WriteLine($"{length}: needle found by dense {denseFound}/{prompts}, by native FlexPrefill {flexFound}/{runs}; token agreement {agreement:P1}");
            Assert.Equal(prompts, denseFound);
            Assert.Equal(runs, flexFound);
            Assert.True(agreement >= 0.98, $"greedy answers agree on {agreement:P1} of the tokens (≥ 98% required)");
        }
        finally
        {
            foreach (var b in backends.Values) b.Dispose();
        }
    }
}
