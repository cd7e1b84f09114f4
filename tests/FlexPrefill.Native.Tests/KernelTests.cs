using FlexPrefill.Inference.Attention;
using FlexPrefill.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native.Tests;

// The native kernels end to end through the bridge: their selection against the managed reference (the oracle), their
// output against dense attention. On a CUDA machine with libflexprefill built they run on the GPU; elsewhere on the
// emulated library (CPU tensors, smaller sizes); without either they skip and say why.
[Collection("native library")]
public sealed class KernelTests
{
    // Structured bf16 inputs on the GPU: [1, H, N, D] with a sink key and local (rotary-like) structure.
    static (Tensor Q, Tensor K, Tensor V) Inputs(int n, int hq, int hkv, int d, long seed, Device device)
    {
        torch.random.manual_seed(seed);
        var pos = arange(n, ScalarType.Float32).unsqueeze(1);                    // [N, 1]
        var freq = pow(0.6, arange(d / 8, ScalarType.Float32)).unsqueeze(0);    // [1, D/8]
        var rot = cat([cos(pos * freq), sin(pos * freq)], 1);                  // [N, D/4]
        var pad = zeros(n, d - d / 4);
        var local = cat([rot, pad], 1);                                          // [N, D]
        var q = 0.5f * randn(1, hq, n, d) + 1.2f * local;
        var k = 0.5f * randn(1, hkv, n, d) + 1.5f * local;
        k[.., .., ..4, d - 1] += 6f;
        q[.., .., .., d - 1] += 1f;
        var v = randn(1, hkv, n, d);
        return (q.to(ScalarType.BFloat16).to(device), k.to(ScalarType.BFloat16).to(device), v.to(ScalarType.BFloat16).to(device));
    }

    static Tensor Dense(Tensor q, Tensor k, Tensor v)
    {
        long g = q.shape[1] / k.shape[1];
        var ke = k.repeat_interleave(g, 1);
        var ve = v.repeat_interleave(g, 1);
        return nn.functional.scaled_dot_product_attention(q.to(ScalarType.Float32), ke.to(ScalarType.Float32),
            ve.to(ScalarType.Float32), is_casual: true);
    }

    [Theory]
    [InlineData(1300, 8, 2, false)]
    [InlineData(1100, 4, 1, false)]
    [InlineData(1500, 4, 4, false)]
    [InlineData(4097, 32, 8, true)]
    public void Block_lists_match_the_managed_reference(int n, int hq, int hkv, bool gpuOnly)
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        if (gpuOnly && emulated) Assert.Skip("too large for the CPU emulator; runs on the GPU");
        var options = new FlexPrefillOptions { MinBudget = 256, Gamma = 0.95, Tau = 0.1 };
        using var native = new NativeFlexPrefillAttention(options, path);
        using var scope = NewDisposeScope();
        var (q, k, _) = Inputs(n, hq, hkv, 128, n, device);
        var expected = new FlexPrefillAttention(options).Select(q, k);
        var actual = native.Select(q, k);
        var differing = new List<string>();
        for (int h = 0; h < hq; h++)
        {
            var e = expected[0, h];
            var a = actual[h];
            if (e.Pattern != a.Pattern || !e.RowPtr.SequenceEqual(a.RowPtr) || !e.ColIdx.SequenceEqual(a.ColIdx))
                differing.Add($"head {h}: managed {e.Pattern} {e.ComputedBlocks} blocks (js {e.JsDistance:F5}), native {a.Pattern} {a.ColIdx.Count} blocks (js {a.JsDistance:F5})");
        }
        // Near-ties (fp32 GPU vs fp32 CPU sums) may flip a query-aware entry; anything more is a bug.
        Assert.True(differing.Count <= hq / 16, string.Join("; ", differing));
    }

    [Fact]
    public void Every_block_selected_gives_dense_attention()
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        var options = new FlexPrefillOptions { Gamma = 1.0, Tau = 0, MinBudget = 0 };
        using var native = new NativeFlexPrefillAttention(options, path) { DenseFallbackDensity = 1, DenseBelowTokens = 0 };
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(emulated ? 700 : 3000, 4, 2, 128, 5, device);
        var statistics = new PrefillStatistics();
        var output = native.Forward(q, k, v, new AttentionCall(0, statistics));
        Assert.Equal(1.0, statistics.DensityOfCausalBlocks);
        double err = (output.to(ScalarType.Float32) - Dense(q, k, v)).abs().max().item<float>();
        Assert.True(err < 2e-2, $"max |native - dense| = {err}");
    }

    [Fact]
    public void Sparse_output_matches_the_managed_reference()
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        var options = new FlexPrefillOptions { MinBudget = 256, Gamma = 0.7 };
        using var native = new NativeFlexPrefillAttention(options, path) { DenseFallbackDensity = 1, DenseBelowTokens = 0 };
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(emulated ? 1500 : 2500, 4, 2, 128, 9, device);
        var statistics = new PrefillStatistics();
        var actual = native.Forward(q, k, v, new AttentionCall(0, statistics));
        var expected = new FlexPrefillAttention(options).Forward(q, k, v, new AttentionCall(0));
        double err = (actual.to(ScalarType.Float32) - expected.to(ScalarType.Float32)).abs().max().item<float>();
        Assert.True(err < 3e-2, $"max |native - managed| = {err}");
        Assert.True(statistics.DensityOfCausalBlocks < 1.0, $"density {statistics.DensityOfCausalBlocks}");
        Assert.True(actual.isfinite().all().item<bool>());
    }

    [Fact]
    public void A_chunk_after_a_cached_prefix_matches_the_managed_reference()
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        var options = new FlexPrefillOptions { MinBudget = 256, Gamma = 0.9 };
        using var native = new NativeFlexPrefillAttention(options, path);
        using var scope = NewDisposeScope();
        int t = emulated ? 1600 : 4000, s = emulated ? 700 : 1500;
        var (qAll, k, v) = Inputs(t, 4, 2, 128, 21, device);
        var q = qAll[.., .., (t - s)..];  // the last S positions: a non-contiguous view, as a chunked prefill passes it
        var expected = new FlexPrefillAttention(options);
        var selection = expected.Select(q, k);
        var actual = native.Select(q, k);
        for (int h = 0; h < 4; h++)
        {
            Assert.Equal(selection[0, h].Pattern, actual[h].Pattern);
            Assert.Equal(selection[0, h].RowPtr, actual[h].RowPtr);
            Assert.Equal(selection[0, h].ColIdx, actual[h].ColIdx);
        }
        var (output, lse) = native.ForwardWithLse(q, k, v, new AttentionCall(0));
        var (reference, referenceLse) = expected.ForwardWithLse(q, k, v, new AttentionCall(0));
        Assert.Equal(new long[] { 1, 4, s, 128 }, output.shape);
        double err = (output.to(ScalarType.Float32) - reference.to(ScalarType.Float32)).abs().max().item<float>();
        double lseErr = (lse - referenceLse.to(ScalarType.Float32)).abs().max().item<float>();
        Assert.True(err < 3e-2, $"max |native - managed| = {err}");
        Assert.True(lseErr < 1e-2, $"max |lse native - managed| = {lseErr}");
    }

    [Fact]
    public void Below_the_fallback_density_select_then_attend_gives_the_one_call_output_bit_for_bit()
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        var options = new FlexPrefillOptions { MinBudget = 256, Gamma = 0.7 };
        using var oneCall = new NativeFlexPrefillAttention(options, path) { DenseFallbackDensity = 1, DenseBelowTokens = 0 };
        using var split = new NativeFlexPrefillAttention(options, path) { DenseFallbackDensity = 0.999, DenseBelowTokens = 0 };
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(emulated ? 1500 : 2500, 4, 2, 128, 9, device);
        var statistics = new PrefillStatistics();
        var expected = oneCall.Forward(q, k, v, new AttentionCall(0));
        var actual = split.Forward(q, k, v, new AttentionCall(3, statistics));
        Assert.True(statistics.DensityOfCausalBlocks < 0.999, $"density {statistics.DensityOfCausalBlocks}: the split path was not taken");
        Assert.Empty(statistics.DenseFallbackLayers);
        Assert.Equal(0f, (expected.to(ScalarType.Float32) - actual.to(ScalarType.Float32)).abs().max().item<float>());
    }

    [Fact]
    public void Above_the_fallback_density_the_call_runs_dense_attention_and_says_so()
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        var options = new FlexPrefillOptions { MinBudget = 256, Gamma = 0.7 };
        using var native = new NativeFlexPrefillAttention(options, path) { DenseFallbackDensity = 0.01, DenseBelowTokens = 0 };
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(emulated ? 1500 : 2500, 4, 2, 128, 9, device);
        var statistics = new PrefillStatistics();
        var actual = native.Forward(q, k, v, new AttentionCall(5, statistics));
        var expected = new DenseAttention().Forward(q, k, v, new AttentionCall(5));
        Assert.Equal(0f, (expected.to(ScalarType.Float32) - actual.to(ScalarType.Float32)).abs().max().item<float>());
        Assert.Equal([5], statistics.DenseFallbackLayers);
        Assert.Equal(4, statistics.Heads.Count);
        Assert.All(statistics.Heads, h => Assert.Equal(AttentionPattern.Dense, h.Pattern));
        Assert.Equal(1.0, statistics.DensityOfCausalBlocks);
    }

    [Fact]
    public void Calls_shorter_than_DenseBelowTokens_run_dense_attention_without_selecting_and_say_so()
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        var options = new FlexPrefillOptions { MinBudget = 256, Gamma = 0.7 };
        int n = emulated ? 1500 : 2500;
        using var native = new NativeFlexPrefillAttention(options, path) { DenseBelowTokens = n + 1 };
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(n, 4, 2, 128, 9, device);
        var statistics = new PrefillStatistics();
        var actual = native.Forward(q, k, v, new AttentionCall(2, statistics));
        var expected = new DenseAttention().Forward(q, k, v, new AttentionCall(2));
        Assert.Equal(0f, (expected.to(ScalarType.Float32) - actual.to(ScalarType.Float32)).abs().max().item<float>());
        Assert.Equal([2], statistics.DenseFallbackLayers);
        long nb = (n + 127) / 128;
        Assert.All(statistics.Heads, h => Assert.Equal(nb * (nb + 1) / 2, h.CausalBlocks));
        Assert.Equal(1.0, statistics.DensityOfCausalBlocks);

        using var selecting = new NativeFlexPrefillAttention(options, path) { DenseBelowTokens = n, DenseFallbackDensity = 1 };
        var sparse = new PrefillStatistics();
        selecting.Forward(q, k, v, new AttentionCall(2, sparse));
        Assert.Empty(sparse.DenseFallbackLayers);
        Assert.True(sparse.DensityOfCausalBlocks < 1.0, $"density {sparse.DensityOfCausalBlocks}: a call of exactly DenseBelowTokens selects");
    }
}
