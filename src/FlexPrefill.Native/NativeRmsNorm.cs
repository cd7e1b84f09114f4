using FlexPrefill.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native;

/// <summary>
/// The model's RMSNorms on libflexprefill's one-launch kernel (<c>flexprefill_rms_norm</c>, transformers' bf16
/// formula), on the legacy default stream where TorchSharp's kernels run. It declines (the model then runs the managed
/// ops) tensors off the library's device, dtypes other than bf16, and widths the kernel does not take.
/// </summary>
public sealed class NativeRmsNorm : IRmsNormKernel
{
    /// <summary>Loads the library.</summary>
    /// <param name="libraryPath">libflexprefill.so; null for FLEXPREFILL_NATIVE or the default search.</param>
    /// <exception cref="FlexPrefillException">The library is missing or does not match this binding.</exception>
    public NativeRmsNorm(string? libraryPath = null) => LibraryPath = NativeLibraryLoader.Load(libraryPath);

    /// <summary>The kernel when libflexprefill loads and sees a CUDA device, else null (the managed ops): the automatic
    /// choice for <c>ModelLoadOptions.RmsNormKernel</c> on CUDA.</summary>
    /// <param name="libraryPath">As for the constructor.</param>
    public static IRmsNormKernel? CreateIfAvailable(string? libraryPath = null) =>
        NativeLibraryLoader.IsAvailable(libraryPath) ? new NativeRmsNorm(libraryPath) : null;

    /// <summary>Where the library was loaded from.</summary>
    public string LibraryPath { get; }

    /// <inheritdoc />
    /// <exception cref="FlexPrefillException">The library rejected the call for a reason other than its limits.</exception>
    public Tensor? Forward(Tensor x, Tensor weight, double eps)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        var device = NativeLibraryLoader.IsEmulated ? DeviceType.CPU : DeviceType.CUDA;
        long hidden = x.size(-1);
        if (x.device_type != device || weight.device_type != device || x.dtype != ScalarType.BFloat16 ||
            weight.dtype != ScalarType.BFloat16 || weight.numel() != hidden || hidden % 8 != 0)
            return null;
        var xc = x.is_contiguous() ? x : x.contiguous(); // rows of `hidden`, one after another
        var w = weight.is_contiguous() ? weight : weight.contiguous();
        var y = empty_like(xc);
        var status = NativeMethods.RmsNorm(Pointer(xc), Pointer(w), Pointer(y), xc.numel() / hidden, (int)hidden, hidden,
            hidden, (float)eps, stream: 0);
        if (status == FlexPrefillStatus.Unsupported) return null; // a limit of the kernel (width, alignment)
        NativeMethods.Check(status);
        return y;
    }

    static nint Pointer(Tensor t) => NativeMethods.TensorData(t.Handle);
}
