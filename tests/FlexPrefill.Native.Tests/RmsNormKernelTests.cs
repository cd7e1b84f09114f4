using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native.Tests;

// The native RMSNorm through the bridge against transformers' formula in libtorch (the model's managed ops) on the
// same bf16 values: on the emulated library with CPU tensors, on a GPU with CUDA ones; without either they skip.
[Collection("native library")]
public sealed class RmsNormKernelTests
{
    static Tensor Managed(Tensor x, Tensor weight, double eps)
    {
        var x32 = x.to(ScalarType.Float32);
        return (x32 * (x32.pow(2).mean([-1], keepdim: true) + eps).rsqrt()).to(x.dtype) * weight;
    }

    [Theory]
    [InlineData(1, 1, 128)]
    [InlineData(2, 5, 896)]  // Qwen2.5-0.5B's width
    [InlineData(1, 3, 4104)] // not a multiple of the CTA's 2048-element stride
    public void The_kernel_matches_the_managed_formula_within_one_bf16_step(int batch, int rows, int hidden)
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        var kernel = new NativeRmsNorm(path);
        using var scope = NewDisposeScope();
        torch.random.manual_seed(hidden);
        var x = (3 * randn(batch, rows, hidden)).to(ScalarType.BFloat16).to(device);
        var weight = (1 + 0.2 * randn(hidden)).to(ScalarType.BFloat16).to(device);
        var actual = kernel.Forward(x, weight, 1e-5);
        Assert.NotNull(actual);
        Assert.Equal(x.shape, actual.shape);
        Assert.Equal(ScalarType.BFloat16, actual.dtype);
        var expected = Managed(x, weight, 1e-5).to(ScalarType.Float32);
        // one bf16 step (2^-8 relative) where the fp32 sum or rsqrt rounds a tie the other way
        var err = ((actual.to(ScalarType.Float32) - expected).abs() / (expected.abs() + 1e-3)).max().item<float>();
        Assert.True(err <= 1.0 / 128, $"max relative |native - managed| = {err}");
    }

    [Fact]
    public void A_view_of_the_last_row_is_normalised_like_a_copy()
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        var kernel = new NativeRmsNorm(path);
        using var scope = NewDisposeScope();
        torch.random.manual_seed(2);
        var x = randn(1, 7, 256).to(ScalarType.BFloat16).to(device);
        var weight = randn(256).to(ScalarType.BFloat16).to(device);
        var last = x.narrow(1, 6, 1); // the logits path normalises this non-contiguous view
        var fromView = kernel.Forward(last, weight, 1e-6)!;
        var fromCopy = kernel.Forward(last.contiguous(), weight, 1e-6)!;
        Assert.Equal(0f, (fromView.to(ScalarType.Float32) - fromCopy.to(ScalarType.Float32)).abs().max().item<float>());
    }

    [Fact]
    public void Tensors_the_kernel_does_not_take_are_declined()
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        var kernel = new NativeRmsNorm(path);
        using var scope = NewDisposeScope();
        var weight = ones(64, ScalarType.BFloat16).to(device);
        Assert.Null(kernel.Forward(ones(2, 64).to(device), ones(64).to(device), 1e-5));                 // float32
        Assert.Null(kernel.Forward(ones(2, 12, ScalarType.BFloat16).to(device), ones(12, ScalarType.BFloat16).to(device), 1e-5)); // width 12
        Assert.Null(kernel.Forward(ones(2, 64, ScalarType.BFloat16).to(device), ones(32, ScalarType.BFloat16).to(device), 1e-5)); // weight width
        Assert.NotNull(kernel.Forward(ones(2, 64, ScalarType.BFloat16).to(device), weight, 1e-5));
    }
}
