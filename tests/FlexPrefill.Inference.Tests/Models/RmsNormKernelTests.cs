using FlexPrefill.Inference.Tests.Engine;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Models;

public class RmsNormKernelTests
{
    [Fact]
    public async Task A_configured_norm_kernel_runs_every_norm_of_every_step_and_gives_the_same_tokens()
    {
        var kernel = new RecordingNorm(decline: false);
        var (plain, fused) = await Run.GenerateWithAndWithout(new ModelLoadOptions { RmsNormKernel = () => kernel },
            promptLength: 12, maxTokens: 5, seed: 3);
        Assert.Equal(plain.Tokens, fused.Tokens);
        Assert.Equal(5 * (2 * 3 + 1), kernel.Calls); // a prefill and four decode steps, two norms a layer and the final one
    }

    [Fact]
    public async Task A_kernel_that_declines_leaves_the_managed_ops()
    {
        var kernel = new RecordingNorm(decline: true);
        var (plain, declined) = await Run.GenerateWithAndWithout(new ModelLoadOptions { RmsNormKernel = () => kernel },
            promptLength: 9, maxTokens: 3, seed: 4);
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
