using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using TorchSharp;

namespace FlexPrefill.SemanticKernel.Tests;

/// <summary>The default loader: service options to the engine's load options, and LanguageModel.Load's errors.</summary>
public sealed class LoaderTests
{
    [Fact]
    public void Service_options_become_the_engines_load_options()
    {
        var o = FlexPrefillModelLoader.ToLoadOptions(new FlexPrefillServiceOptions
        {
            ModelPath = "/m", Device = "cpu", DType = "bfloat16", MaxContextTokens = 8192, QueueCapacity = 3, PrefixCacheBytes = 1234,
        });

        Assert.Equal(("cpu", torch.ScalarType.BFloat16, 8192, 3, 1234L), (o.Device, o.DType, o.MaxContextTokens, o.QueueCapacity, o.PrefixCacheBytes));
        Assert.Null(o.FlexPrefillBackend); // the CPU runs the engine's managed reference
        Assert.Null(FlexPrefillModelLoader.ToLoadOptions(new FlexPrefillServiceOptions { Device = "cuda", NativeKernels = false }).FlexPrefillBackend);
        Assert.Null(o.DecodeAttention); // and the two matmuls decode
        Assert.Null(FlexPrefillModelLoader.ToLoadOptions(new FlexPrefillServiceOptions { Device = "cuda", NativeKernels = false }).DecodeAttention);
    }

    [Fact]
    public void On_cuda_decode_attention_is_the_native_kernel_when_the_library_loads_and_the_two_matmuls_otherwise()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir", "libflexprefill.so");
        var make = FlexPrefillModelLoader.ToLoadOptions(new FlexPrefillServiceOptions { Device = "cuda", NativeLibraryPath = missing }).DecodeAttention!;
        Assert.IsType<DenseDecodeAttention>(make());
    }

    [Fact]
    public void On_cuda_one_backend_is_kept_per_flexprefill_setting()
    {
        var backends = FlexPrefillModelLoader.ToLoadOptions(new FlexPrefillServiceOptions { Device = "cuda" }).FlexPrefillBackend!;

        var a = backends(new FlexPrefillOptions { Gamma = 0.9 });
        var b = backends(new FlexPrefillOptions { Gamma = 0.9 });
        var c = backends(new FlexPrefillOptions { Gamma = 0.8 });

        Assert.Same(a, b);
        Assert.NotSame(a, c);
        Assert.Equal(0.8, c is FlexPrefillAttention managed ? managed.Options.Gamma : ((Native.NativeFlexPrefillAttention)c).Options.Gamma);
    }

    [Fact]
    public void A_folder_without_a_model_fails_to_load_naming_the_file()
    {
        string empty = Directory.CreateTempSubdirectory("flexprefill-empty").FullName;
        var services = new ServiceCollection();
        services.AddFlexPrefillChatCompletion(o => { o.ModelPath = empty; o.Device = "cpu"; });
        using var provider = services.BuildServiceProvider();

        var e = Assert.Throws<ModelLoadException>(() => provider.GetRequiredService<IChatCompletionService>());

        Assert.Contains("config.json", e.Message);
    }
}
