using FlexPrefill.Inference.Attention;
using TorchSharp;
using static FlexPrefill.Inference.Tests.Attention.AttentionReference;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Attention;

[Collection(nameof(AttentionReference))]
public class FlexPrefillCudaTests
{
    [Fact]
    public void On_cuda_tensors_the_reference_selects_the_same_blocks_and_computes_the_same_output_as_on_cpu()
    {
        if (!cuda.is_available()) Assert.Skip("CUDA is not available on this machine (TorchSharp-cpu build or no GPU)");
        using var scope = NewDisposeScope();
        var (q, k, v) = RandomQkv(1, 8, 2, 1500, 2000, 64, seed: 9);
        q = q * 3;
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { MinBudget = 128, BlockSize = 64 });

        var onCpu = attention.Select(q, k);
        var onGpu = attention.Select(q.cuda(), k.cuda());
        var output = attention.Forward(q.cuda().to(ScalarType.BFloat16), k.cuda().to(ScalarType.BFloat16), v.cuda().to(ScalarType.BFloat16), new AttentionCall(0));

        int differing = Enumerable.Range(0, 8).Count(h => !onCpu[0, h].ColIdx.SequenceEqual(onGpu[0, h].ColIdx) || !onCpu[0, h].RowPtr.SequenceEqual(onGpu[0, h].RowPtr));
        Assert.True(differing <= 1, $"{differing} of 8 heads select other blocks on CUDA (one near-tie allowed)");
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        Assert.Equal(DeviceType.CUDA, output.device_type);
        var selection = attention.Select(q.cuda().to(ScalarType.BFloat16), k.cuda().to(ScalarType.BFloat16));
        var (expected, _) = CausalAttention(q.to(ScalarType.BFloat16).to(ScalarType.Float32), k.to(ScalarType.BFloat16).to(ScalarType.Float32),
            v.to(ScalarType.BFloat16).to(ScalarType.Float32), (b, h) => TokenMask(selection, b, h));
        Assert.True(MaxAbsDiff(output.cpu(), expected) < 2e-2, $"output differs by {MaxAbsDiff(output.cpu(), expected)}");
    }
}
