using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tests.Engine;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Attention;

public class DecodeAttentionTests
{
    [Fact]
    public void The_two_matmuls_equal_dense_attention_of_the_last_position()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var q = randn(1, 8, 1, 16);
        var k = randn(1, 2, 13, 16).narrow(2, 0, 11); // a view of a cache with room left
        var v = randn(1, 2, 13, 16).narrow(2, 0, 11);
        var expected = new DenseAttention().Forward(q, k, v, new AttentionCall(0));
        var actual = new DenseDecodeAttention().Forward(q, k, v);
        Assert.Equal(new long[] { 1, 8, 1, 16 }, actual.shape);
        Assert.True((actual - expected).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public async Task A_configured_decode_attention_runs_every_decode_step_and_leaves_with_the_model()
    {
        int[] prompt = Run.Prompt(12, 101);
        var options = new GenerationOptions { MaxTokens = 5 };
        GenerationSummary plain, recorded;
        using (var model = LanguageModel.CreateRandom(Run.Tiny, seed: 3))
        {
            Assert.Equal("dense", model.DecodeAttention);
            plain = await Run.Generate(model, prompt, options);
        }
        var recording = new RecordingDecode();
        using (var model = LanguageModel.CreateRandom(Run.Tiny, new ModelLoadOptions { DecodeAttention = () => recording }, seed: 3))
        {
            Assert.Equal("recording", model.DecodeAttention);
            recorded = await Run.Generate(model, prompt, options);
            Assert.False(recording.Disposed);
        }
        Assert.Equal(plain.Tokens, recorded.Tokens); // the recording attention is the two matmuls underneath
        Assert.Equal(3 * 4, recording.Calls);         // three layers, four decode steps after the prefill's token
        Assert.True(recording.Disposed);
    }

    [Fact]
    public void A_decode_attention_factory_that_throws_fails_the_load()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            LanguageModel.CreateRandom(Run.Tiny, new ModelLoadOptions { DecodeAttention = () => throw new InvalidOperationException("no kernel") }));
        Assert.Equal("no kernel", e.Message);
    }

    sealed class RecordingDecode : IDecodeAttention, IDisposable
    {
        readonly DenseDecodeAttention _dense = new();
        public int Calls;
        public bool Disposed;
        public string Name => "recording";

        public Tensor Forward(Tensor q, Tensor keys, Tensor values)
        {
            Calls++;
            return _dense.Forward(q, keys, values);
        }

        public void Dispose() => Disposed = true;
    }
}
