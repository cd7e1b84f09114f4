using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native.Tests;

// The native decode kernel through the bridge, against the managed two matmuls (DenseDecodeAttention, in float32 on
// the same bf16 values) on views of a KV cache with room left: on the emulated library with CPU tensors for short odd
// caches, on a GPU for long ones; without either they skip and say why.
[Collection("native library")]
public sealed class DecodeKernelTests
{
    // The query of position T - 1 and the first T positions of a [1, Hkv, T + 19, D] cache, bf16; a few sink keys and a
    // query scale that make the softmax peaked rather than flat.
    static (Tensor Q, Tensor Keys, Tensor Values) Inputs(int t, int hq, int hkv, int d, long seed, Device device)
    {
        torch.random.manual_seed(seed);
        var keyCache = randn(1, hkv, t + 19, d);
        keyCache[.., .., ..Math.Min(t, 3), 0] += 4f;
        var valueCache = randn(1, hkv, t + 19, d);
        var q = 0.25f * randn(1, hq, 1, d);
        q[.., .., .., 0] += 1f;
        Tensor Bf16(Tensor x) => x.to(ScalarType.BFloat16).to(device);
        return (Bf16(q), Bf16(keyCache).narrow(2, 0, t), Bf16(valueCache).narrow(2, 0, t));
    }

    static double MaxError(Tensor actual, Tensor q, Tensor keys, Tensor values)
    {
        var expected = new DenseDecodeAttention().Forward(q.to(ScalarType.Float32), keys.to(ScalarType.Float32), values.to(ScalarType.Float32));
        return (actual.to(ScalarType.Float32) - expected).abs().max().item<float>();
    }

    [Theory]
    [InlineData(1, 2, 2, 64)]     // one key: the output is its value
    [InlineData(77, 4, 4, 128)]   // G 1
    [InlineData(301, 8, 2, 64)]   // G 4, two splits on the emulator
    [InlineData(1025, 8, 2, 128)] // G 4, four splits
    [InlineData(513, 8, 1, 128)]  // G 8
    [InlineData(300, 40, 2, 64)]  // G 20: two chunks of query heads per KV head
    public void The_kernel_matches_the_two_matmuls_on_a_cache_view(int t, int hq, int hkv, int d)
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        using var native = new NativeDecodeAttention(path);
        using var scope = NewDisposeScope();
        var (q, keys, values) = Inputs(t, hq, hkv, d, t + hq, device);
        var output = native.Forward(q, keys, values);
        Assert.Equal(new long[] { 1, hq, 1, d }, output.shape);
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        double err = MaxError(output, q, keys, values);
        Assert.True(err < 1e-2, $"max |native - two matmuls| = {err}");
    }

    [Fact]
    public void A_long_cache_on_the_gpu_matches_the_two_matmuls()
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        if (emulated) Assert.Skip("a 32K cache is too long for the CPU emulator; runs on the GPU");
        using var native = new NativeDecodeAttention(path);
        using var scope = NewDisposeScope();
        foreach (int t in new[] { 4097, 32771 })
        {
            var (q, keys, values) = Inputs(t, 32, 8, 128, t, device);
            double err = MaxError(native.Forward(q, keys, values), q, keys, values);
            Assert.True(err < 1e-2, $"T {t}: max |native - two matmuls| = {err}");
        }
    }

    [Fact]
    public void Batches_and_several_queries_are_refused_saying_so()
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        using var native = new NativeDecodeAttention(path);
        using var scope = NewDisposeScope();
        var (q, keys, values) = Inputs(40, 4, 2, 64, 1, device);
        var batch = Assert.Throws<NotSupportedException>(() => native.Forward(q.expand(2, -1, -1, -1), keys.expand(2, -1, -1, -1), values.expand(2, -1, -1, -1)));
        Assert.Contains("batch 2", batch.Message);
        var queries = Assert.Throws<NotSupportedException>(() => native.Forward(q.expand(-1, -1, 3, -1), keys, values));
        Assert.Contains("3 query positions", queries.Message);
    }

    [Fact]
    public void What_the_kernel_does_not_take_runs_the_two_matmuls()
    {
        var (path, device, _) = TestLibrary.KernelsOrSkip();
        using var native = new NativeDecodeAttention(path);
        using var scope = NewDisposeScope();
        var (q, keys, values) = Inputs(50, 4, 2, 64, 2, device);
        var (q32, k32, v32) = (q.to(ScalarType.Float32), keys.to(ScalarType.Float32), values.to(ScalarType.Float32));
        var expected = new DenseDecodeAttention().Forward(q32, k32, v32);
        Assert.Equal(0f, (native.Forward(q32, k32, v32) - expected).abs().max().item<float>());
        var (q96, k96, v96) = Inputs(50, 4, 2, 96, 2, device);
        Assert.Equal(0f, (native.Forward(q96, k96, v96).to(ScalarType.Float32) -
                          new DenseDecodeAttention().Forward(q96, k96, v96).to(ScalarType.Float32)).abs().max().item<float>());
    }

    [Fact]
    public async Task A_model_given_the_kernel_decodes_through_it_and_disposes_it()
    {
        var (path, device, emulated) = TestLibrary.KernelsOrSkip();
        var config = new ModelConfig
        {
            ModelType = "llama", VocabSize = 97, HiddenSize = 256, IntermediateSize = 64, NumLayers = 2, NumHeads = 4,
            NumKvHeads = 2, MaxPositionEmbeddings = 4096, EosTokenIds = [],
        }; // head dim 64
        var compared = new ComparedDecode(new NativeDecodeAttention(path));
        using (var model = LanguageModel.CreateRandom(config, new ModelLoadOptions
        {
            Device = emulated ? "cpu" : "cuda",
            DType = ScalarType.BFloat16,
            DecodeAttention = () => compared,
        }, seed: 4))
        {
            Assert.Equal("compared", model.DecodeAttention);
            var prompt = Enumerable.Range(0, emulated ? 300 : 3000).Select(i => (i * 31 + 7) % 97).ToArray();
            GenerationSummary? summary = null;
            await foreach (var update in model.GenerateAsync(prompt, new GenerationOptions { MaxTokens = 6, Temperature = 0 }, TestContext.Current.CancellationToken))
                summary = update.Summary ?? summary;
            Assert.Equal(6, summary!.CompletionTokens);
        }
        Assert.Equal(2 * 5, compared.Calls); // two layers, five decode steps after the prefill's token
        Assert.True(compared.MaxError < 2e-2, $"max |native - two matmuls| inside the model = {compared.MaxError}");
        Assert.True(compared.Disposed);
    }

    // The native kernel, checked call by call against the two matmuls on the model's own cache views.
    sealed class ComparedDecode(NativeDecodeAttention native) : IDecodeAttention, IDisposable
    {
        public int Calls;
        public double MaxError;
        public bool Disposed;
        public string Name => "compared";

        public Tensor Forward(Tensor q, Tensor keys, Tensor values)
        {
            var output = native.Forward(q, keys, values);
            MaxError = Math.Max(MaxError, DecodeKernelTests.MaxError(output, q, keys, values));
            Calls++;
            return output;
        }

        public void Dispose()
        {
            native.Dispose();
            Disposed = true;
        }
    }
}
