using System.Runtime.InteropServices;

namespace FlexPrefill.Native;

/// <summary>Mirror of <c>flexprefill_params</c> (include/flexprefill.h); sizes are checked against the library at load.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeParams
{
    public nint Q, K, V, Out, Lse, Workspace, Stream;
    public ulong WorkspaceBytes;
    public long QRowStride, QHeadStride, KRowStride, KHeadStride, VRowStride, VHeadStride, OutRowStride, OutHeadStride;
    public long LseHeadStride;
    public int Batch, SeqQ, SeqK, HeadsQ, HeadsKv, HeadDim, BlockSize, MinBudget, MaxBudget, Mode, Variant;
    public float Gamma, Tau;
    public int Reserved;
}

/// <summary>Mirror of <c>flexprefill_head_info</c>: what the last selection chose for one head.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeHeadInfo
{
    public int Pattern, VerticalCount, SlashCount, VerticalBlocks, SlashBands, QaEntries;
    public long ComputedBlocks, CausalBlocks;
    public float JsDistance;
    public uint QaThreshold;
}

/// <summary><c>flexprefill_mode</c>.</summary>
internal enum NativeMode
{
    Auto = 0,
    Dense = 1,
}
