using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using TorchSharp;
using DeviceType = TorchSharp.DeviceType;

namespace FlexPrefill.Cli;

/// <summary>Loads models with the --device/--dtype choices, checking CUDA first so the error says what to do.</summary>
static class ModelFactory
{
    public static LanguageModel Load(string directory, string device, string? dtype) =>
        LanguageModel.Load(directory, Options(device, dtype));

    public static ModelLoadOptions Options(string device, string? dtype)
    {
        RequireLibTorch();
        if (device == "cuda")
            RequireCuda();
        return new ModelLoadOptions
        {
            Device = device,
            DType = CommonOptions.ToScalarType(dtype),
            FlexPrefillBackend = options => new FlexPrefillAttention(options),
        };
    }

    /// <summary>Loads libtorch now, so a build without it (-p:TorchBackend=external and no LD_LIBRARY_PATH) fails
    /// with what to do rather than with a confusing error from the first tensor.</summary>
    static void RequireLibTorch()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
        }
        catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException)
        {
            throw new InvalidOperationException(
                "libtorch could not be loaded. A -p:TorchBackend=external build needs LD_LIBRARY_PATH naming a PyTorch install's torch/lib " +
                $"(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib): {e.Message}", e);
        }
    }

    public static void RequireCuda()
    {
        if (!torch.cuda.is_available())
            throw new InvalidOperationException(
                "--device cuda: CUDA is not available to TorchSharp. Build with -p:TorchBackend=cuda (TorchSharp-cuda-linux), " +
                "or -p:TorchBackend=external with LD_LIBRARY_PATH naming a CUDA PyTorch install's torch/lib");
    }
}
