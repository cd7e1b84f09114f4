using System.Diagnostics;
using FlexPrefill.Inference.Models;
using TorchSharp;

namespace FlexPrefill.Inference.Tests.Engine;

/// <summary>Process memory is shared by every test: these run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(LeakTests), DisableParallelization = true)]
public sealed class LeakTestsCollection;

[Collection(nameof(LeakTests))]
public class LeakTests
{
    static readonly ModelConfig Tiny = new()
    {
        ModelType = "llama", VocabSize = 101, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4,
        NumKvHeads = 2, MaxPositionEmbeddings = 512,
    };

    static long LiveTensors(LanguageModel model) =>
        model.RunOnInferenceThreadAsync(() => DisposeScopeManager.Statistics.ThreadTotalLiveCount).GetAwaiter().GetResult();

    static long Rss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.WorkingSet64;
    }

    [Fact]
    public async Task Two_hundred_generations_leave_live_tensors_and_process_memory_flat()
    {
        using var model = LanguageModel.CreateRandom(Tiny, seed: 1);
        var options = new FlexPrefill.Inference.Generation.GenerationOptions { MaxTokens = 6, Temperature = 0.8, TopP = 0.9, TopK = 20, RepetitionPenalty = 1.1, Seed = 3 };
        for (int i = 0; i < 20; i++) await Run.Generate(model, Run.Prompt(12, 101, seed: i), options); // warm up allocators
        long tensorsBefore = LiveTensors(model), rssBefore = Rss();
        for (int i = 0; i < 200; i++)
        {
            await Run.Generate(model, Run.Prompt(12, 101, seed: i), options);
            if (i % 50 == 0) await model.LogitsAsync(Run.Prompt(9, 101, seed: i), [0, -1], Run.Ct);
        }
        long tensorsAfter = LiveTensors(model), rssAfter = Rss();
        TestContext.Current.SendDiagnosticMessage($"live tensors {tensorsBefore} → {tensorsAfter}, RSS {rssBefore >> 20} → {rssAfter >> 20} MiB");
        Assert.Equal(tensorsBefore, tensorsAfter);
        Assert.True(rssAfter - rssBefore < 48L << 20, $"RSS grew {(rssAfter - rssBefore) >> 20} MiB over 200 generations ({rssBefore >> 20} → {rssAfter >> 20} MiB)");
    }
}
