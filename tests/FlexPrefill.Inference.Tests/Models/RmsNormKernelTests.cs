using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tests.Engine;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Models;

public class RmsNormKernelTests
{
    [Fact]
    public async Task A_configured_norm_kernel_runs_every_norm_of_every_step_and_gives_the_same_tokens()
    {
        int[] prompt = Run.Prompt(12, 101);
        var options = new GenerationOptions { MaxTokens = 5 };
        GenerationSummary plain, fused;
        using (var model = LanguageModel.CreateRandom(Run.Tiny, seed: 3))
            plain = await Run.Generate(model, prompt, options);
        var kernel = new RecordingNorm(decline: false);
        using (var model = LanguageModel.CreateRandom(Run.Tiny, new ModelLoadOptions { RmsNormKernel = () => kernel }, seed: 3))
            fused = await Run.Generate(model, prompt, options);
        Assert.Equal(plain.Tokens, fused.Tokens);
        Assert.Equal(5 * (2 * 3 + 1), kernel.Calls); // a prefill and four decode steps, two norms a layer and the final one
    }

    [Fact]
    public async Task A_kernel_that_declines_leaves_the_managed_ops()
    {
        int[] prompt = Run.Prompt(9, 101);
        var options = new GenerationOptions { MaxTokens = 3 };
        GenerationSummary plain, declined;
        using (var model = LanguageModel.CreateRandom(Run.Tiny, seed: 4))
            plain = await Run.Generate(model, prompt, options);
        var kernel = new RecordingNorm(decline: true);
        using (var model = LanguageModel.CreateRandom(Run.Tiny, new ModelLoadOptions { RmsNormKernel = () => kernel }, seed: 4))
            declined = await Run.Generate(model, prompt, options);
        Assert.Equal(plain.Tokens, declined.Tokens);
        Assert.Equal(3 * 7, kernel.Calls);
    }

    // The managed formula, recomputed independently; or null (declined).
    sealed class RecordingNorm(bool decline) : IRmsNormKernel
    {
        public int Calls;

        public Tensor? Forward(Tensor x, Tensor weight, double eps)
        {
            Calls++;
            if (decline) return null;
            var x32 = x.to(ScalarType.Float32);
            return weight * (x32 / (x32.square().mean([-1], keepdim: true) + eps).sqrt()).to(x.dtype);
        }
    }
}
