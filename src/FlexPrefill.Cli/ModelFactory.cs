using System.Collections.Concurrent;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Native;
using TorchSharp;
using DeviceType = TorchSharp.DeviceType;

namespace FlexPrefill.Cli;

/// <summary>Loads models with the --device/--dtype choices, checking libtorch and CUDA first so errors say what to do,
/// and supplies the FlexPrefill backend and the decode attention: the native CUDA kernels on cuda when libflexprefill
/// loads (FLEXPREFILL_NATIVE or beside the executable), else the managed reference and the two matmuls.</summary>
static class ModelFactory
{
    // One backend per distinct options for the life of the process: the native one keeps a device workspace.
    static readonly ConcurrentDictionary<(FlexPrefillOptions, bool Native), IAttentionBackend> Backends = new();

    public static LanguageModel Load(string directory, string device, string? dtype) =>
        LanguageModel.Load(directory, Options(device, dtype));

    public static ModelLoadOptions Options(string device, string? dtype)
    {
        RequireLibTorch();
        if (device == "cuda")
            RequireCuda();
        var native = device == "cuda" && NativeFlexPrefillAttention.IsAvailable();
        return new ModelLoadOptions
        {
            Device = device,
            DType = CommonOptions.ToScalarType(dtype),
            FlexPrefillBackend = options => Backends.GetOrAdd((options, native), key => key.Native
                ? new NativeFlexPrefillAttention(key.Item1)
                : new FlexPrefillAttention(key.Item1)),
            DecodeAttention = native ? () => new NativeDecodeAttention() : null,
            RmsNormKernel = native ? () => new NativeRmsNorm() : null,
        };
    }

    /// <summary>Whether FlexPrefill on <paramref name="device"/> runs on the native kernels; the reason when not.</summary>
    public static bool NativeFlexPrefill(string device, out string? whyNot)
    {
        whyNot = device != "cuda" ? "the native kernels are CUDA only"
            : NativeFlexPrefillAttention.IsAvailable() ? null
            : $"libflexprefill did not load or sees no GPU (set {NativeLibraryLoader.EnvironmentVariable} to native/build*/libflexprefill.so)";
        return whyNot is null;
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

    static void RequireCuda()
    {
        if (!torch.cuda.is_available())
            throw new InvalidOperationException(
                "--device cuda: CUDA is not available to TorchSharp. Build with -p:TorchBackend=cuda (TorchSharp-cuda-linux), " +
                "or -p:TorchBackend=external with LD_LIBRARY_PATH naming a CUDA PyTorch install's torch/lib");
    }
}
