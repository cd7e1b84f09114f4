using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using TorchSharp;

namespace FlexPrefill.Cli;

/// <summary>Loads models with the --device/--dtype choices, checking CUDA first so the error says what to do.</summary>
static class ModelFactory
{
    public static LanguageModel Load(string directory, string device, string? dtype) =>
        LanguageModel.Load(directory, Options(device, dtype));

    public static ModelLoadOptions Options(string device, string? dtype)
    {
        if (device == "cuda")
            RequireCuda();
        return new ModelLoadOptions
        {
            Device = device,
            DType = CommonOptions.ToScalarType(dtype),
            FlexPrefillBackend = options => new FlexPrefillAttention(options),
        };
    }

    public static void RequireCuda()
    {
        if (!torch.cuda.is_available())
            throw new InvalidOperationException(
                "--device cuda: CUDA is not available to TorchSharp. Build with -p:TorchBackend=cuda (TorchSharp-cuda-linux), " +
                "or -p:TorchBackend=external with LD_LIBRARY_PATH naming a CUDA PyTorch install's torch/lib");
    }
}
