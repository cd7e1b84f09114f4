using System.Runtime.InteropServices;

namespace FlexPrefill.Native;

/// <summary>
/// P/Invoke declarations of libflexprefill. The name "flexprefill" is resolved by <see cref="NativeLibraryLoader"/>
/// (an explicit path, FLEXPREFILL_NATIVE, or the default search).
/// </summary>
internal static partial class NativeMethods
{
    internal const string Library = "flexprefill";

    [LibraryImport(Library, EntryPoint = "flexprefill_last_error")]
    internal static partial nint LastError();

    [LibraryImport(Library, EntryPoint = "flexprefill_version")]
    internal static partial nint Version();

    [LibraryImport(Library, EntryPoint = "flexprefill_abi_sizes")]
    internal static partial void AbiSizes(out int paramsBytes, out int headInfoBytes);

    [LibraryImport(Library, EntryPoint = "flexprefill_cuda_available")]
    internal static partial int CudaAvailable();

    [LibraryImport(Library, EntryPoint = "flexprefill_workspace_size")]
    internal static partial FlexPrefillStatus WorkspaceSize(in NativeParams p, out ulong bytes);

    [LibraryImport(Library, EntryPoint = "flexprefill_is_dense")]
    internal static partial FlexPrefillStatus IsDense(in NativeParams p, out int dense);

    [LibraryImport(Library, EntryPoint = "flexprefill_forward")]
    internal static partial FlexPrefillStatus Forward(in NativeParams p);

    [LibraryImport(Library, EntryPoint = "flexprefill_select")]
    internal static partial FlexPrefillStatus Select(in NativeParams p);

    [LibraryImport(Library, EntryPoint = "flexprefill_attend")]
    internal static partial FlexPrefillStatus Attend(in NativeParams p);

    [LibraryImport(Library, EntryPoint = "flexprefill_layout")]
    internal static partial FlexPrefillStatus Layout(in NativeParams p, out int rows, out long causalBlocks);

    [LibraryImport(Library, EntryPoint = "flexprefill_read_heads")]
    internal static unsafe partial FlexPrefillStatus ReadHeads(in NativeParams p, NativeHeadInfo* heads);

    [LibraryImport(Library, EntryPoint = "flexprefill_read_csr")]
    internal static unsafe partial FlexPrefillStatus ReadCsr(in NativeParams p, int head, int* rowPtr, int* colIdx, long colCapacity);

    [LibraryImport(Library, EntryPoint = "flexprefill_decode_workspace_size")]
    internal static partial FlexPrefillStatus DecodeWorkspaceSize(in NativeParams p, out ulong bytes);

    [LibraryImport(Library, EntryPoint = "flexprefill_decode")]
    internal static partial FlexPrefillStatus Decode(in NativeParams p);

    [LibraryImport(Library, EntryPoint = "flexprefill_rms_norm")]
    internal static partial FlexPrefillStatus RmsNorm(nint x, nint weight, nint y, long rows, int hidden, long xRowStride,
        long yRowStride, float eps, nint stream);

    [LibraryImport(Library, EntryPoint = "flexprefill_silu_mul")]
    internal static partial FlexPrefillStatus SiluMul(nint gateUp, nint output, long rows, int ffn, long inRowStride,
        long outRowStride, nint stream);

    /// <summary>
    /// The data pointer of a tensor (at::Tensor::data_ptr, storage offset included), from TorchSharp's own native
    /// library: TorchSharp's <c>storage&lt;T&gt;()</c> does not accept bf16.
    /// </summary>
    [LibraryImport("LibTorchSharp", EntryPoint = "THSTensor_data")]
    internal static partial nint TensorData(nint tensorHandle);

    /// <summary>Throws <see cref="FlexPrefillException"/> with the library's message unless <paramref name="status"/> is Ok.</summary>
    internal static void Check(FlexPrefillStatus status)
    {
        if (status != FlexPrefillStatus.Ok)
            throw new FlexPrefillException(status, $"libflexprefill: {Marshal.PtrToStringUTF8(LastError())}");
    }
}
