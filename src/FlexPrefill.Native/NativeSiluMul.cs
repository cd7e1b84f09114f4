using FlexPrefill.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native;

/// <summary>
/// The model's SwiGLU activations on libflexprefill's one-launch kernel (<c>flexprefill_silu_mul</c>, PyTorch's bf16
/// roundings of silu(gate) · up), on the legacy default stream where TorchSharp's kernels run: 3F bf16 moved per row
/// instead of the 5F of eager silu and mul. It declines (the model then runs the managed ops) tensors off the
/// library's device, dtypes other than bf16, and widths the kernel does not take.
/// </summary>
/// <remarks>
/// Opt-in (<c>ModelLoadOptions.SiluMulKernel</c>); the CLI and the Semantic Kernel host do not choose it yet. Its first
/// GPU validation (fp_validate_silu, H200, 2026-12-01, docs/benchmarks.md) passed every case of random gates and
/// missed by more than one bf16 step on 2 of the 65,536 bf16 values as gates: the ones below -87, whose divisor
/// 1 + exp(-g) passes 2^126. The kernel now scales such divisions; that fix has run on the emulator only.
/// </remarks>
public sealed class NativeSiluMul : ISiluMulKernel
{
    /// <summary>Loads the library.</summary>
    /// <param name="libraryPath">libflexprefill.so; null for FLEXPREFILL_NATIVE or the default search.</param>
    /// <exception cref="FlexPrefillException">The library is missing or does not match this binding.</exception>
    public NativeSiluMul(string? libraryPath = null) => LibraryPath = NativeLibraryLoader.Load(libraryPath);

    /// <summary>The kernel when libflexprefill loads and sees a CUDA device, else null (the managed ops): a value for
    /// <c>ModelLoadOptions.SiluMulKernel</c> on CUDA.</summary>
    /// <param name="libraryPath">As for the constructor.</param>
    public static ISiluMulKernel? CreateIfAvailable(string? libraryPath = null) =>
        NativeLibraryLoader.IsAvailable(libraryPath) ? new NativeSiluMul(libraryPath) : null;

    /// <summary>Where the library was loaded from.</summary>
    public string LibraryPath { get; }

    /// <inheritdoc />
    /// <exception cref="FlexPrefillException">The library rejected the call for a reason other than its limits.</exception>
    public Tensor? Forward(Tensor gateUp)
    {
        ArgumentNullException.ThrowIfNull(gateUp);
        var device = NativeLibraryLoader.IsEmulated ? DeviceType.CPU : DeviceType.CUDA;
        long width = gateUp.size(-1), ffn = width / 2;
        if (gateUp.device_type != device || gateUp.dtype != ScalarType.BFloat16 || width % 16 != 0)
            return null;
        var input = gateUp.is_contiguous() ? gateUp : gateUp.contiguous(); // rows of [gate | up], one after another
        long[] shape = input.shape;
        shape[^1] = ffn;
        var y = empty(shape, ScalarType.BFloat16, input.device);
        var status = NativeMethods.SiluMul(Pointer(input), Pointer(y), input.numel() / width, (int)ffn, width, ffn, stream: 0);
        if (status == FlexPrefillStatus.Unsupported) return null; // a limit of the kernel (width, alignment)
        NativeMethods.Check(status);
        return y;
    }

    static nint Pointer(Tensor t) => NativeMethods.TensorData(t.Handle);
}
