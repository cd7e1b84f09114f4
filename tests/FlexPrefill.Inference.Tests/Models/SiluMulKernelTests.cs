using FlexPrefill.Inference.Tests.Engine;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Models;

public class SiluMulKernelTests
{
    [Fact]
    public async Task A_configured_silu_mul_kernel_runs_every_mlp_of_every_step_and_gives_the_same_tokens()
    {
        var kernel = new RecordingSiluMul(decline: false);
        var (plain, fused) = await Run.GenerateWithAndWithout(new ModelLoadOptions { SiluMulKernel = () => kernel },
            promptLength: 12, maxTokens: 5, seed: 3);
        Assert.Equal(plain.Tokens, fused.Tokens);
        Assert.Equal(5 * 3, kernel.Calls); // a prefill and four decode steps, one MLP a layer
    }

    [Fact]
    public async Task A_kernel_that_declines_leaves_the_managed_ops()
    {
        var kernel = new RecordingSiluMul(decline: true);
        var (plain, declined) = await Run.GenerateWithAndWithout(new ModelLoadOptions { SiluMulKernel = () => kernel },
            promptLength: 9, maxTokens: 3, seed: 4);
        Assert.Equal(plain.Tokens, declined.Tokens);
        Assert.Equal(3 * 3, kernel.Calls);
    }

    // The managed formula, recomputed independently (silu as x · sigmoid(x)); or null (declined).
    sealed class RecordingSiluMul(bool decline) : ISiluMulKernel
    {
        public int Calls;

        public Tensor? Forward(Tensor gateUp)
        {
            Calls++;
            if (decline) return null;
            long f = gateUp.size(-1) / 2;
            Tensor gate = gateUp.narrow(-1, 0, f), up = gateUp.narrow(-1, f, f);
            return (gate * gate.sigmoid()).to(gateUp.dtype) * up;
        }
    }
}
