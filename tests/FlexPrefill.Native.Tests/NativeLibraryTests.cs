using System.Runtime.InteropServices;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native.Tests;

// The loader is process-wide state (the first successful load wins), so these tests share one collection.
[Collection("native library")]
public sealed class NativeLibraryTests
{
    [Fact]
    public void Asking_for_a_missing_library_names_the_path()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir", "libflexprefill.so");
        var e = Assert.Throws<FlexPrefillException>(() => new NativeFlexPrefillAttention(new FlexPrefillOptions(), missing));
        Assert.Contains(missing, e.Message);
        Assert.False(NativeFlexPrefillAttention.IsAvailable(missing));
    }

    [Fact]
    public void Without_a_usable_library_the_automatic_choice_is_the_managed_reference()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir", "libflexprefill.so");
        var backend = NativeFlexPrefillAttention.CreateOrManaged(new FlexPrefillOptions(), missing);
        Assert.IsType<FlexPrefillAttention>(backend);
        var path = TestLibrary.PathOrSkip();
        NativeLibraryLoader.Load(path);
        var chosen = NativeFlexPrefillAttention.CreateOrManaged(new FlexPrefillOptions(), path);
        if (NativeFlexPrefillAttention.IsAvailable(path)) Assert.IsType<NativeFlexPrefillAttention>(chosen);
        else Assert.IsType<FlexPrefillAttention>(chosen);
    }

    [Fact]
    public void The_library_loads_and_matches_the_binding()
    {
        var path = TestLibrary.PathOrSkip();
        Assert.Equal(Path.GetFullPath(path), NativeLibraryLoader.Load(path));
        Assert.StartsWith("0.1.0 (", NativeLibraryLoader.Version);
        NativeMethods.AbiSizes(out int paramsBytes, out int headBytes);
        Assert.Equal(Marshal.SizeOf<NativeParams>(), paramsBytes);
        Assert.Equal(Marshal.SizeOf<NativeHeadInfo>(), headBytes);
    }

    [Fact]
    public void A_rejected_parameter_surfaces_the_native_message()
    {
        NativeLibraryLoader.Load(TestLibrary.PathOrSkip());
        var p = new NativeParams
        {
            Batch = 1, SeqQ = 4096, SeqK = 4096, HeadsQ = 32, HeadsKv = 8, HeadDim = 96, BlockSize = 128,
            MinBudget = 1024, Gamma = 0.95f, Tau = 0.1f,
        };
        var e = Assert.Throws<FlexPrefillException>(() => NativeMethods.Check(NativeMethods.WorkspaceSize(p, out _)));
        Assert.Equal(FlexPrefillStatus.Unsupported, e.Status);
        Assert.Contains("head_dim is 96", e.Message);
        Assert.Contains("api.cpp:", e.Message);
        p.HeadDim = 128;
        NativeMethods.Check(NativeMethods.WorkspaceSize(p, out ulong bytes));
        Assert.True(bytes > 0);
        NativeMethods.Check(NativeMethods.IsDense(p, out int dense));
        Assert.Equal(0, dense);
    }

    [Fact]
    public void Cpu_tensors_run_on_the_managed_reference_with_the_same_result()
    {
        var options = new FlexPrefillOptions { BlockSize = 64, MinBudget = 64, Gamma = 0.5 };
        using var native = new NativeFlexPrefillAttention(options, TestLibrary.PathOrSkip());
        var managed = new FlexPrefillAttention(options);
        using var scope = NewDisposeScope();
        torch.random.manual_seed(3);
        var q = randn(1, 4, 600, 64);
        var k = randn(1, 2, 600, 64);
        var v = randn(1, 2, 600, 64);
        var statistics = new PrefillStatistics();
        var expected = managed.Forward(q, k, v, new AttentionCall(0));
        var actual = native.Forward(q, k, v, new AttentionCall(2, statistics));
        Assert.Equal(0f, (expected - actual).abs().max().item<float>());
        Assert.Equal(4, statistics.Heads.Count);
        Assert.All(statistics.Heads, h => Assert.Equal(2, h.Layer));
        Assert.True(statistics.DensityOfCausalBlocks < 1.0);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void A_fallback_density_outside_0_to_1_is_refused(double density)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new NativeFlexPrefillAttention(new FlexPrefillOptions(), TestLibrary.PathOrSkip()) { DenseFallbackDensity = density });
        Assert.Contains("[0, 1]", e.Message);
    }

    [Fact]
    public void A_negative_dense_below_tokens_is_refused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new NativeFlexPrefillAttention(new FlexPrefillOptions(), TestLibrary.PathOrSkip()) { DenseBelowTokens = -1 });
        Assert.Contains(">= 0", e.Message);
    }
}
