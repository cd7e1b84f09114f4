using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Models;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Engine;

public class GenerationTests
{
    static LanguageModel Random(ModelLoadOptions? options = null, ModelConfig? config = null) =>
        LanguageModel.CreateRandom(config ?? Run.Tiny, options, seed: 3);

    [Fact]
    public async Task Greedy_generation_is_deterministic_and_stops_at_max_tokens()
    {
        using var model = Random();
        int[] prompt = Run.Prompt(12, 101);
        var a = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 10 });
        var b = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 10 });
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(10, a.CompletionTokens);
        Assert.Equal(FinishReason.Length, a.FinishReason);
        Assert.Equal(12, a.PromptTokens);
        Assert.Equal("dense", a.AttentionBackend);
        Assert.True(a.PrefillMilliseconds > 0);
    }

    [Fact]
    public async Task Greedy_decode_steps_agree_with_a_full_prefill()
    {
        using var model = Random();
        int[] prompt = Run.Prompt(15, 101, seed: 4);
        var summary = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 8 });
        int[] all = prompt.Concat(summary.Tokens).ToArray();
        var positions = Enumerable.Range(prompt.Length - 1, summary.Tokens.Count).ToArray();
        var logits = await model.LogitsAsync(all, positions, Run.Ct);
        for (int i = 0; i < positions.Length; i++)
        {
            float[] row = logits[positions[i]];
            Assert.Equal(Array.IndexOf(row, row.Max()), summary.Tokens[i]);
        }
    }

    [Fact]
    public void Decode_logits_equal_prefill_logits_and_a_split_prefill_equals_a_whole_one()
    {
        var weights = new FlexPrefill.Inference.Loading.RandomWeights(5, ScalarType.Float32, CPU, std: 0.1);
        using var model = new Transformer(Run.Tiny, weights, ScalarType.Float32, CPU);
        using var scope = NewDisposeScope();
        long[] ids = Run.Prompt(20, 101, seed: 6).Select(t => (long)t).ToArray();
        var dense = new DenseAttention();

        using var whole = new KvCache(Run.Tiny, 1, 20, ScalarType.Float32, CPU);
        Tensor all = model.Prefill(tensor(ids).unsqueeze(0), whole, dense, arange(20), cancellationToken: Run.Ct); // [1, 20, V]

        // 12 tokens, then 6 more through the T > S path, then two decode steps
        using var split = new KvCache(Run.Tiny, 1, 20, ScalarType.Float32, CPU);
        model.Prefill(tensor(ids[..12]).unsqueeze(0), split, dense, cancellationToken: Run.Ct);
        Tensor chunk = model.Prefill(tensor(ids[12..18]).unsqueeze(0), split, dense, arange(6), cancellationToken: Run.Ct); // [1, 6, V]
        Tensor d18 = model.Decode(tensor(new[] { ids[18] }).unsqueeze(0), split);
        Tensor d19 = model.Decode(tensor(new[] { ids[19] }).unsqueeze(0), split);

        Assert.True(chunk[0].allclose(all[0].narrow(0, 12, 6), rtol: 0, atol: 1e-4), "split prefill differs");
        Assert.True(d18[0].allclose(all[0, 18], rtol: 0, atol: 1e-4), "decode at 18 differs");
        Assert.True(d19[0].allclose(all[0, 19], rtol: 0, atol: 1e-4), "decode at 19 differs");
        Assert.Equal(20, split.Length);
    }

    [Fact]
    public async Task Seeded_sampling_repeats_and_other_seeds_differ()
    {
        using var model = Random();
        int[] prompt = Run.Prompt(8, 101);
        GenerationOptions Opt(long seed) => new() { MaxTokens = 24, Temperature = 1.5, TopK = 50, TopP = 0.95, Seed = seed };
        var a = await Run.Generate(model, prompt, Opt(1));
        var b = await Run.Generate(model, prompt, Opt(1));
        var c = await Run.Generate(model, prompt, Opt(2));
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.NotEqual(a.Tokens, c.Tokens);
    }

    [Fact]
    public async Task An_eos_token_stops_generation_and_is_reported()
    {
        using var model = Random();
        int[] prompt = Run.Prompt(10, 101, seed: 8);
        var free = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 6 });
        int stopAt = free.Tokens[2];
        int firstIndex = free.Tokens.ToList().IndexOf(stopAt);
        var stopped = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 6, StopTokenIds = [stopAt] });
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(free.Tokens.Take(firstIndex + 1), stopped.Tokens);
    }

    [Fact]
    public void Prompt_plus_max_tokens_beyond_the_context_is_refused_before_queueing()
    {
        using var model = Random(new ModelLoadOptions { MaxContextTokens = 32 });
        var e = Assert.Throws<ContextLengthExceededException>(() => model.GenerateAsync(Run.Prompt(30, 101), new GenerationOptions { MaxTokens = 5 }, Run.Ct));
        Assert.Equal(32, e.ContextLength);
        Assert.Contains("32", e.Message);
        Assert.Equal(0, model.QueuedRequests);
    }

    [Fact]
    public void Token_ids_outside_the_vocabulary_are_refused()
    {
        using var model = Random();
        Assert.Throws<ArgumentOutOfRangeException>(() => model.GenerateAsync([5, 101], new GenerationOptions(), Run.Ct));
    }

    [Fact]
    public async Task A_full_queue_refuses_the_next_request()
    {
        using var model = Random(new ModelLoadOptions { QueueCapacity = 1 });
        using var running = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var blocker = new Progress(p => { running.Set(); release.Wait(TimeSpan.FromSeconds(30)); });
        var first = Run.Generate(model, Run.Prompt(5, 101), new GenerationOptions { MaxTokens = 2, PrefillProgress = blocker });
        Assert.True(running.Wait(TimeSpan.FromSeconds(30), Run.Ct));
        var second = Run.Generate(model, Run.Prompt(5, 101), new GenerationOptions { MaxTokens = 2 });
        Assert.Equal(1, model.QueuedRequests);
        var e = Assert.Throws<InferenceQueueFullException>(() => model.GenerateAsync(Run.Prompt(5, 101), new GenerationOptions { MaxTokens = 2 }, Run.Ct));
        Assert.Equal(1, e.Capacity);
        release.Set();
        Assert.Equal(2, (await first).CompletionTokens);
        Assert.Equal(2, (await second).CompletionTokens);
    }

    [Fact]
    public async Task A_request_cancelled_while_queued_ends_at_once()
    {
        using var model = Random();
        using var running = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var blocker = new Progress(p => { running.Set(); release.Wait(TimeSpan.FromSeconds(30)); });
        var first = Run.Generate(model, Run.Prompt(5, 101), new GenerationOptions { MaxTokens = 2, PrefillProgress = blocker });
        Assert.True(running.Wait(TimeSpan.FromSeconds(30), Run.Ct));
        using var cts = new CancellationTokenSource();
        var queued = Run.Collect(model.GenerateAsync(Run.Prompt(5, 101), new GenerationOptions { MaxTokens = 2 }, cts.Token));
        cts.Cancel();
        var (updates, summary) = await queued.WaitAsync(TimeSpan.FromSeconds(10), Run.Ct); // the inference thread is still blocked
        Assert.Equal(FinishReason.Cancelled, summary.FinishReason);
        Assert.Equal(0, summary.CompletionTokens);
        Assert.Single(updates);
        release.Set();
        Assert.Equal(2, (await first).CompletionTokens);
        Assert.Equal(0, model.QueuedRequests);
    }

    /// <summary>IProgress that calls back synchronously on the inference thread (Progress&lt;T&gt; would post elsewhere).</summary>
    sealed class Progress(Action<PrefillProgress> report) : IProgress<PrefillProgress>
    {
        public void Report(PrefillProgress value) => report(value);
    }

    [Fact]
    public async Task Prefill_progress_reports_every_layer_and_ends_complete()
    {
        using var model = Random();
        var seen = new List<PrefillProgress>();
        await Run.Generate(model, Run.Prompt(9, 101), new GenerationOptions { MaxTokens = 1, PrefillProgress = new Progress(seen.Add) });
        Assert.Equal(Enumerable.Range(0, 4), seen.Select(p => p.LayersDone));
        Assert.All(seen, p => { Assert.Equal(3, p.Layers); Assert.Equal(9, p.Tokens); });
        Assert.Equal(1.0, seen[^1].Fraction);
    }

    [Fact]
    public async Task Cancelling_between_decode_steps_ends_the_stream_and_leaves_the_model_usable()
    {
        using var model = Random();
        int[] prompt = Run.Prompt(10, 101, seed: 9);
        var reference = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 12 });
        using var cts = new CancellationTokenSource();
        var updates = new List<GenerationUpdate>();
        await foreach (var u in model.GenerateAsync(prompt, new GenerationOptions { MaxTokens = 400 }, cts.Token))
        {
            updates.Add(u);
            if (updates.Count == 3) cts.Cancel();
        }
        var summary = updates[^1].Summary!;
        Assert.Equal(FinishReason.Cancelled, summary.FinishReason);
        Assert.InRange(summary.CompletionTokens, 3, 40);
        Assert.Equal(reference.Tokens.Take(3), summary.Tokens.Take(3));
        var again = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 12 });
        Assert.Equal(reference.Tokens, again.Tokens);
    }

    [Fact]
    public async Task Cancelling_between_prefill_layers_stops_before_any_token()
    {
        using var model = Random();
        using var cts = new CancellationTokenSource();
        int[] prompt = Run.Prompt(10, 101, seed: 10);
        var progress = new Progress(p => { if (p.LayersDone == 1) cts.Cancel(); });
        var (updates, summary) = await Run.Collect(model.GenerateAsync(prompt, new GenerationOptions { MaxTokens = 5, PrefillProgress = progress }, cts.Token));
        Assert.Equal(FinishReason.Cancelled, summary.FinishReason);
        Assert.Equal(0, summary.CompletionTokens);
        Assert.Single(updates);
        var after = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 5 });
        Assert.Equal(5, after.CompletionTokens);
    }

    [Fact]
    public async Task A_reader_that_stops_reading_stops_the_generation()
    {
        using var model = Random(new ModelLoadOptions { PrefixCacheBytes = 1 << 26 });
        int[] prompt = Run.Prompt(6, 101, seed: 11);
        int read = 0;
        await foreach (var u in model.GenerateAsync(prompt, new GenerationOptions { MaxTokens = 500 }, Run.Ct))
            if (++read == 2) break;
        // the request's KV cache lands in the prefix cache when it ends: its length shows how far it went
        IReadOnlyList<int> lengths = [];
        for (int i = 0; i < 100 && lengths.Count == 0; i++)
        {
            lengths = await model.RunOnInferenceThreadAsync(() => model.PrefixCache!.EntryLengths);
            if (lengths.Count == 0) await Task.Delay(20, Run.Ct);
        }
        Assert.Single(lengths);
        Assert.InRange(lengths[0], prompt.Length + 1, prompt.Length + 30);
    }

    [Fact]
    public async Task FlexPrefill_uses_the_managed_reference_by_default_and_a_given_factory_otherwise()
    {
        int[] prompt = Run.Prompt(16, 101, seed: 12);
        using (var plain = Random())
        {
            var dense = await Run.Generate(plain, prompt, new GenerationOptions { MaxTokens = 4 });
            var reference = await Run.Generate(plain, prompt, new GenerationOptions { MaxTokens = 4, Attention = AttentionMode.FlexPrefill });
            Assert.Equal("flexprefill", reference.AttentionBackend);
            Assert.Equal(dense.Tokens, reference.Tokens); // 16 tokens: FlexPrefill falls back to dense
            Assert.NotNull(reference.Attention);
        }
        var recording = new RecordingBackend();
        using var model = Random(new ModelLoadOptions { FlexPrefillBackend = o => { recording.Gamma = o.Gamma; return recording; } });
        var plainDense = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 4 });
        var flex = await Run.Generate(model, prompt, new GenerationOptions { MaxTokens = 4, Attention = AttentionMode.FlexPrefill, FlexPrefill = new FlexPrefillOptions { Gamma = 0.9 } });
        Assert.Equal(plainDense.Tokens, flex.Tokens); // the recording backend is dense underneath
        Assert.Equal("recording", flex.AttentionBackend);
        Assert.Equal(0.9, recording.Gamma);
        Assert.Equal(3, recording.Calls); // one prefill call per layer; decode stays dense in the model
        Assert.NotNull(flex.Attention);
        Assert.Equal(3 * 4, flex.Attention!.Heads.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.GenerateAsync(prompt, new GenerationOptions { Attention = AttentionMode.FlexPrefill, FlexPrefill = new FlexPrefillOptions { Gamma = 2 } }, Run.Ct));
    }

    sealed class RecordingBackend : IAttentionBackend
    {
        readonly DenseAttention _dense = new();
        public int Calls;
        public double Gamma;
        public string Name => "recording";
        public Tensor Forward(Tensor q, Tensor k, Tensor v, AttentionCall call)
        {
            Calls++;
            for (int h = 0; h < q.shape[1]; h++)
                call.Statistics?.Add(new HeadStatistics(call.Layer, h, AttentionPattern.Dense, double.NaN, 1, 1));
            return _dense.Forward(q, k, v, call);
        }
    }
}
