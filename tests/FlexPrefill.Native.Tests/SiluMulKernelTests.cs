using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native.Tests;

// The native silu·mul through the bridge against PyTorch's bf16 eager ops in libtorch (the model's managed ops) on
// the same values: on the emulated library with CPU tensors, on a GPU with CUDA ones; without either they skip.
[Collection("native library")]
public sealed class SiluMulKernelTests
{
    static Tensor Managed(Tensor gateUp)
    {
        Tensor[] gate_up = gateUp.chunk(2, dim: -1);
        return nn.functional.silu(gate_up[0]).mul_(gate_up[1]);
    }

    /// <summary>|a - b| in bf16 steps at the larger magnitude (2^-7 of its binade; 0 where both are 0).</summary>
    static Tensor Steps(Tensor a, Tensor b)
    {
        Tensor a64 = a.to(ScalarType.Float64), b64 = b.to(ScalarType.Float64);
        Tensor larger = a64.abs().maximum(b64.abs()).clamp_min(1e-30);
        return (a64 - b64).abs() / pow(tensor(2.0, ScalarType.Float64), larger.log2().floor() - 7);
    }

    [Theory]
    [InlineData(1, 1, 8)]
    [InlineData(2, 5, 896)]  // not a multiple of the CTA's 2048 columns
    [InlineData(1, 3, 4864)] // Qwen2.5-0.5B's FFN width
    public void The_kernel_matches_the_managed_ops_within_one_bf16_step_and_mostly_exactly(int batch, int rows, int ffn)
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        var kernel = new NativeSiluMul(path);
        using var scope = NewDisposeScope();
        torch.random.manual_seed(ffn);
        var gateUp = cat([3 * randn(batch, rows, ffn), randn(batch, rows, ffn)], -1).to(ScalarType.BFloat16).to(device);
        var actual = kernel.Forward(gateUp);
        Assert.NotNull(actual);
        Assert.Equal(new long[] { batch, rows, ffn }, actual.shape);
        Assert.Equal(ScalarType.BFloat16, actual.dtype);
        var steps = Steps(actual.cpu(), Managed(gateUp).cpu());
        double most = steps.max().item<double>();
        Assert.True(most <= 1, $"an output is {most} bf16 steps from the managed ops");
        // the same two roundings: only silu's exp (libtorch's, the emulator's or the GPU's) may tip a tie
        long off = steps.count_nonzero().item<long>();
        TestContext.Current.SendDiagnosticMessage($"{off} of {steps.numel()} outputs one bf16 step from the managed ops");
        Assert.True(off * 1000 <= steps.numel(), $"{off} of {steps.numel()} outputs differ from the managed ops");
    }

    [Fact]
    public void A_view_of_the_projection_is_converted_like_a_copy()
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        var kernel = new NativeSiluMul(path);
        using var scope = NewDisposeScope();
        torch.random.manual_seed(2);
        var gateUp = randn(1, 7, 256).to(ScalarType.BFloat16).to(device);
        var last = gateUp.narrow(1, 6, 1).transpose(0, 1); // not contiguous
        var fromView = kernel.Forward(last)!;
        var fromCopy = kernel.Forward(last.contiguous())!;
        Assert.Equal(0f, (fromView.to(ScalarType.Float32) - fromCopy.to(ScalarType.Float32)).abs().max().item<float>());
    }

    [Fact]
    public void Tensors_the_kernel_does_not_take_are_declined()
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        var kernel = new NativeSiluMul(path);
        using var scope = NewDisposeScope();
        Assert.Null(kernel.Forward(ones(2, 64).to(device)));                             // float32
        Assert.Null(kernel.Forward(ones(2, 24, ScalarType.BFloat16).to(device)));        // F = 12, not a multiple of 8
        Assert.Null(kernel.Forward(ones(2, 2 * 131080, ScalarType.BFloat16).to(device))); // F beyond the kernel's limit
        Assert.NotNull(kernel.Forward(ones(2, 64, ScalarType.BFloat16).to(device)));
    }
}
