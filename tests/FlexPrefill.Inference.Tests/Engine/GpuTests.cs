using System.Runtime.InteropServices;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Models;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Engine;

public class GpuTests(ITestOutputHelper output)
{
    static void RequireCuda()
    {
        if (!cuda.is_available()) Assert.Skip("CUDA not available: GPU tests run on a GPU machine (build with -p:TorchBackend=cuda or external)");
    }

    [DllImport("libcuda.so.1", EntryPoint = "cuMemGetInfo_v2")]
    static extern int CuMemGetInfo(out nuint free, out nuint total);

    /// <summary>Device memory in use as the driver sees it (caching allocator included), read on the inference thread.</summary>
    static long DeviceBytesInUse(LanguageModel model) => model.RunOnInferenceThreadAsync(() =>
    {
        cuda.synchronize();
        int status = CuMemGetInfo(out nuint free, out nuint total);
        Assert.Equal(0, status);
        return (long)total - (long)free;
    }).GetAwaiter().GetResult();

    [Fact]
    public async Task Bfloat16_on_cuda_picks_the_float32_cpu_top1_where_it_is_clear()
    {
        RequireCuda();
        using var tiny = TinyModel.Create(heads: 4, kvHeads: 2, hidden: 64, intermediate: 128, headDim: 16);
        using var cpuModel = LanguageModel.Load(tiny.Directory);
        using var gpuModel = LanguageModel.Load(tiny.Directory, new ModelLoadOptions { Device = "cuda" });
        Assert.Equal(ScalarType.BFloat16, gpuModel.DType);
        int[] prompt = Run.Prompt(64, 97, seed: 5);
        int[] positions = Enumerable.Range(0, 64).ToArray();
        var cpuLogits = await cpuModel.LogitsAsync(prompt, positions, Run.Ct);
        var gpuLogits = await gpuModel.LogitsAsync(prompt, positions, Run.Ct);
        int compared = 0;
        foreach (int p in positions)
        {
            float[] row = cpuLogits[p];
            float[] sorted = row.OrderDescending().ToArray();
            if (sorted[0] - sorted[1] < 0.1) continue;
            Assert.Equal(HfFixture.ArgMax(row), HfFixture.ArgMax(gpuLogits[p]));
            compared++;
        }
        Assert.True(compared > 32, $"only {compared} positions had a clear top-1");
    }

    /// <summary>
    /// A leak grows with every generation; the caching allocator grows while it finds its working set and then stays.
    /// So memory is read after each of four rounds of 50 generations, and the last two rounds must not grow it.
    /// </summary>
    [Fact]
    public async Task Two_hundred_generations_on_cuda_leave_device_memory_flat()
    {
        RequireCuda();
        var config = new ModelConfig
        {
            ModelType = "llama", VocabSize = 1000, HiddenSize = 256, IntermediateSize = 512, NumLayers = 4, NumHeads = 8,
            NumKvHeads = 2, MaxPositionEmbeddings = 4096,
        };
        using var model = LanguageModel.CreateRandom(config, new ModelLoadOptions { Device = "cuda" }, seed: 2);
        var options = new GenerationOptions { MaxTokens = 16, Temperature = 0.7, TopP = 0.9, Seed = 1 };
        for (int i = 0; i < 20; i++) await Run.Generate(model, Run.Prompt(300, 1000, seed: i), options);
        var readings = new List<long> { DeviceBytesInUse(model) };
        for (int round = 0; round < 4; round++)
        {
            for (int i = 0; i < 50; i++) await Run.Generate(model, Run.Prompt(300, 1000, seed: i), options);
            readings.Add(DeviceBytesInUse(model));
        }
        output.WriteLine("device memory in use after 20 warm-up generations, then every 50: " +
            string.Join(", ", readings.Select(b => $"{b >> 20} MiB")));
        Assert.True(readings[^1] - readings[^3] <= 8L << 20,
            $"device memory grew {(readings[^1] - readings[^3]) >> 20} MiB over the last 100 generations ({string.Join(" → ", readings.Select(b => b >> 20))} MiB)");
    }
}
