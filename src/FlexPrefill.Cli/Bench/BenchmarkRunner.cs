using System.Runtime.InteropServices;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;

namespace FlexPrefill.Cli.Bench;

/// <summary>What one benchmark process measures.</summary>
/// <param name="Lengths">Prompt lengths, run in this order.</param>
/// <param name="Attentions">"dense" and/or "flexprefill", run at each length in this order.</param>
/// <param name="DecodeSteps">Decode steps after the first token.</param>
/// <param name="FlexPrefill">FlexPrefill parameters.</param>
/// <param name="Seed">Seed of the random prompt tokens.</param>
sealed record BenchmarkPlan(IReadOnlyList<int> Lengths, IReadOnlyList<string> Attentions, int DecodeSteps, FlexPrefillOptions FlexPrefill, int Seed = 1234)
{
    /// <summary>Warm-up prompt length: long enough to take FlexPrefill's sparse path, short enough to be cheap.</summary>
    public int WarmupTokens => Math.Min(Lengths.Min(), 4096);

    /// <summary>Warm-up decode steps: past the 30 calls after which .NET's tiered JIT recompiles a method fully
    /// optimised, so the measured decode is the steady state (4 steps left the decode path partly at tier 0); never
    /// more than the rows decode, whose context was sized for them.</summary>
    public int WarmupDecodeSteps => Math.Min(64, DecodeSteps);
}

/// <summary>Runs the plan on one model in this process: a warm-up per attention, then each (length, attention) row
/// through the engine's real path (prefill through the attention backend, last-position logits, decode on the KV cache).</summary>
sealed class BenchmarkRunner(LanguageModel model, BenchmarkPlan plan, GpuMemoryMonitor? memory, TextWriter log)
{
    public async Task<IReadOnlyList<BenchmarkRow>> RunAsync(CancellationToken cancellationToken)
    {
        var modelMb = memory?.CurrentMiB;
        foreach (var attention in plan.Attentions)
        {
            log.WriteLine($"warm-up: {attention}, {plan.WarmupTokens:N0} tokens");
            await MeasureAsync(plan.WarmupTokens, attention, plan.WarmupDecodeSteps, cancellationToken).ConfigureAwait(false);
        }

        var rows = new List<BenchmarkRow>();
        foreach (var tokens in plan.Lengths)
        {
            foreach (var attention in plan.Attentions)
            {
                cancellationToken.ThrowIfCancellationRequested();
                log.WriteLine($"run: {attention}, {tokens:N0} tokens, {plan.DecodeSteps} decode steps");
                try
                {
                    rows.Add(await MeasureAsync(tokens, attention, plan.DecodeSteps, cancellationToken).ConfigureAwait(false) with { ModelGpuMb = modelMb });
                }
                catch (Exception e) when (e is ContextLengthExceededException or ExternalException or OutOfMemoryException)
                {
                    // One length that does not fit (context, GPU memory) must not lose the rows that did.
                    log.WriteLine($"  failed: {e.Message}");
                    rows.Add(BenchmarkRow.Failed(tokens, attention, FirstLine(e.Message)));
                }
                log.WriteLine($"  {Describe(rows[^1])}");
            }
        }
        return rows;
    }

    async Task<BenchmarkRow> MeasureAsync(int tokens, string attention, int decodeSteps, CancellationToken cancellationToken)
    {
        var prompt = RandomPrompt(tokens, model.Config.VocabSize, plan.Seed + tokens);
        var options = new GenerationOptions
        {
            MaxTokens = decodeSteps + 1,
            Temperature = 0,
            Attention = attention == "flexprefill" ? AttentionMode.FlexPrefill : AttentionMode.Dense,
            FlexPrefill = plan.FlexPrefill,
            ReusePrefix = false,
        };
        memory?.ResetPeak();
        GenerationSummary? summary = null;
        await foreach (var update in model.GenerateAsync(prompt, options, cancellationToken).ConfigureAwait(false))
            summary = update.Summary ?? summary;
        if (summary is null)
            throw new InvalidOperationException("generation ended without a summary");
        return new BenchmarkRow(
            Tokens: tokens,
            Attention: attention,
            Backend: summary.AttentionBackend,
            TtftMs: summary.PrefillMilliseconds,
            PrefillTokensPerSecond: tokens / (summary.PrefillMilliseconds / 1000),
            DecodeTokensPerSecond: summary.DecodeTokensPerSecond,
            DecodeSteps: Math.Max(0, summary.CompletionTokens - 1),
            PeakGpuMb: memory?.PeakMiB,
            ModelGpuMb: null,
            Density: summary.Attention?.DensityOfCausalBlocks ?? 1.0);
    }

    static int[] RandomPrompt(int tokens, int vocabSize, int seed)
    {
        var random = new Random(seed);
        var ids = new int[tokens];
        for (var i = 0; i < tokens; i++) ids[i] = random.Next(vocabSize);
        return ids;
    }

    static string Describe(BenchmarkRow r) => r.Error is not null
        ? $"failed: {r.Error}"
        : $"TTFT {r.TtftMs:F1} ms, decode {r.DecodeTokensPerSecond:F1} tok/s over {r.DecodeSteps} steps, density {r.Density:F3}" +
          (r.PeakGpuMb is { } mb ? $", peak {mb:N0} MiB" : "");

    static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
