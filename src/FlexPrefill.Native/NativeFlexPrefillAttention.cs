using FlexPrefill.Inference.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native;

/// <summary>
/// FlexPrefill on libflexprefill's CUDA kernels (estimate, select, CSR and block-sparse attention on raw device
/// pointers, the default stream), with dense SDPA for selections too dense to pay (<see cref="DenseFallbackDensity"/>).
/// Calls the kernels do not cover (CPU tensors, dtypes other than bf16, batch &gt; 1, head dims other than 64/128,
/// block sizes other than 64/128, or the paper's query-aware-only variant) run on the managed reference
/// <see cref="FlexPrefillAttention"/> with the same options, so the backend is usable for any call.
/// </summary>
public sealed class NativeFlexPrefillAttention : IAttentionBackend, IDisposable
{
    readonly FlexPrefillAttention _managed;
    readonly DenseAttention _dense = new();
    readonly object _gate = new();
    Tensor? _workspace;

    /// <summary>Loads the library and creates the backend.</summary>
    /// <param name="options">γ, τ, budgets, block size (validated here).</param>
    /// <param name="libraryPath">libflexprefill.so; null for FLEXPREFILL_NATIVE or the default search.</param>
    /// <exception cref="FlexPrefillException">The library is missing or does not match this binding.</exception>
    public NativeFlexPrefillAttention(FlexPrefillOptions options, string? libraryPath = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options.Validate();
        LibraryPath = NativeLibraryLoader.Load(libraryPath);
        _managed = new FlexPrefillAttention(options);
    }

    /// <summary>True when libflexprefill loads and sees a CUDA device (never throws): use it to pick this backend.</summary>
    /// <param name="libraryPath">As for the constructor.</param>
    public static bool IsAvailable(string? libraryPath = null) => NativeLibraryLoader.IsAvailable(libraryPath);

    /// <summary>
    /// The native backend when libflexprefill loads and sees a CUDA device, else the managed reference
    /// <see cref="FlexPrefillAttention"/>: the automatic choice for <c>ModelLoadOptions.FlexPrefillBackend</c>.
    /// </summary>
    /// <param name="options">γ, τ, budgets, block size.</param>
    /// <param name="libraryPath">As for the constructor.</param>
    public static IAttentionBackend CreateOrManaged(FlexPrefillOptions options, string? libraryPath = null) =>
        IsAvailable(libraryPath) ? new NativeFlexPrefillAttention(options, libraryPath) : new FlexPrefillAttention(options);

    /// <summary>The validated options.</summary>
    public FlexPrefillOptions Options { get; }

    /// <summary>Where the library was loaded from.</summary>
    public string LibraryPath { get; }

    /// <inheritdoc />
    public string Name => "flexprefill-native";

    /// <summary>
    /// Density of a call's selection (computed over causal blocks, all heads together) above which it runs dense SDPA
    /// instead of the sparse kernel, which would then be the slower of the two. The selection is paid either way, so the
    /// sparse kernel pays while density × (its dense-mode time / SDPA's) stays below 1: on an H200 (docs/benchmarks.md,
    /// 2026-12-01, session 5 call 2) that ratio is 1.02-1.14, so below density 0.88 at 32K, 0.94 at 16K and 0.98 at
    /// 128K. 0.8 keeps a margin. 1 never falls back. Only <see cref="Forward"/> falls back; <see cref="ForwardWithLse"/>
    /// always runs the kernels.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not in [0, 1].</exception>
    public double DenseFallbackDensity
    {
        get => _denseFallbackDensity;
        init => _denseFallbackDensity = value is >= 0 and <= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(DenseFallbackDensity), value, "a density of causal blocks, in [0, 1]");
    }
    readonly double _denseFallbackDensity = 0.8;

    /// <summary>
    /// Calls with fewer query tokens than this run dense SDPA without selecting: below 16K the selection costs about a
    /// third of SDPA (0.31-0.34 of 0.90-0.94 ms at 8K on an H200, session 5 call 2), so FlexPrefill was 0.64-0.84× of
    /// dense there on the default model's real Q/K and on diffuse inputs (1.26× on structured ones). 0 selects at every
    /// length. Only <see cref="Forward"/> applies it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int DenseBelowTokens
    {
        get => _denseBelowTokens;
        init => _denseBelowTokens = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(DenseBelowTokens), value, "a number of query tokens, >= 0");
    }
    readonly int _denseBelowTokens = 16384;

    /// <inheritdoc />
    /// <remarks>Calls shorter than <see cref="DenseBelowTokens"/> run dense SDPA. Others select first; a selection denser
    /// than <see cref="DenseFallbackDensity"/> runs dense SDPA, any other the sparse kernel over it. Dense calls are
    /// recorded in <see cref="PrefillStatistics.DenseFallbackLayers"/>.</remarks>
    public Tensor Forward(Tensor q, Tensor k, Tensor v, AttentionCall call)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (q.shape[2] < DenseBelowTokens && UnsupportedReason(q, k, v) is null) return Dense(q, k, v, call);
        return Run(q, k, v, call, withLse: false, mayFallBack: DenseFallbackDensity < 1).Output;
    }

    // Dense SDPA for the whole call, recorded as every head computing every causal block.
    Tensor Dense(Tensor q, Tensor k, Tensor v, AttentionCall call)
    {
        if (call.Statistics is { } statistics)
        {
            long causal = new BlockGrid((int)k.shape[2], (int)q.shape[2], Options.BlockSize).CausalBlocks;
            for (int h = 0; h < q.shape[1]; h++)
                statistics.Add(new HeadStatistics(call.Layer, h, AttentionPattern.Dense, double.NaN, causal, causal));
            statistics.AddDenseFallback(call.Layer);
        }
        return _dense.Forward(q, k, v, call);
    }

    /// <summary>Like <see cref="Forward"/>, and also returns the log-sum-exp of every query row.</summary>
    /// <param name="q">Queries after RoPE: [B, Hq, S, D].</param>
    /// <param name="k">Keys after RoPE: [B, Hkv, T, D], T ≥ S.</param>
    /// <param name="v">Values: [B, Hkv, T, D].</param>
    /// <param name="call">Layer and the statistics sink.</param>
    /// <returns>Output [B, Hq, S, D] in q's dtype and LSE [B, Hq, S] (natural log, fp32).</returns>
    public (Tensor Output, Tensor Lse) ForwardWithLse(Tensor q, Tensor k, Tensor v, AttentionCall call)
    {
        var (output, lse) = Run(q, k, v, call, withLse: true, mayFallBack: false);
        return (output, lse!);
    }

    // The kernels in one call (forward), or select, look at the density, then attend or run dense SDPA. Calls the
    // kernels do not cover run on the managed reference.
    (Tensor Output, Tensor? Lse) Run(Tensor q, Tensor k, Tensor v, AttentionCall call, bool withLse, bool mayFallBack)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (UnsupportedReason(q, k, v) is not null) return Managed(q, k, v, call, withLse);
        using var scope = NewDisposeScope();
        var qc = Aligned(q);
        var kc = Aligned(k);
        var vc = Aligned(v);
        long hq = q.shape[1], s = q.shape[2], d = q.shape[3];
        var output = empty([1, hq, s, d], q.dtype, q.device);                               // [B, Hq, S, D]
        var lse = withLse ? empty([1, hq, s], ScalarType.Float32, q.device) : null;       // [B, Hq, S]
        lock (_gate)
        {
            var p = Describe(qc, kc, vc, output, lse);
            var status = mayFallBack ? NativeMethods.Select(p) : NativeMethods.Forward(p);
            if (status == FlexPrefillStatus.Unsupported)
            {
                var (o, l) = Managed(q, k, v, call, withLse);
                return (o.MoveToOuterDisposeScope(), l?.MoveToOuterDisposeScope());
            }
            NativeMethods.Check(status);
            NativeHeadInfo[]? heads = null;
            if (mayFallBack)
            {
                heads = ReadHeads(p); // synchronises the stream once per layer: the price of choosing
                long computed = heads.Sum(h => h.ComputedBlocks), causal = heads.Sum(h => h.CausalBlocks);
                if (causal > 0 && (double)computed / causal > DenseFallbackDensity)
                    return (Dense(q, k, v, call).MoveToOuterDisposeScope(), null);
                NativeMethods.Check(NativeMethods.Attend(p));
            }
            if (call.Statistics is { } statistics) Record(heads ?? ReadHeads(p), call.Layer, statistics); // a sync when read here
        }
        return (output.MoveToOuterDisposeScope(), lse?.MoveToOuterDisposeScope());
    }

    (Tensor Output, Tensor? Lse) Managed(Tensor q, Tensor k, Tensor v, AttentionCall call, bool withLse) =>
        withLse ? _managed.ForwardWithLse(q, k, v, call) : (_managed.Forward(q, k, v, call), null);

    /// <summary>
    /// The native block selection of one call without attention (estimate, select, CSR), copied to the host: per
    /// query head its pattern, JS distance and CSR over the existing query block rows. For comparisons with
    /// <see cref="FlexPrefillAttention.Select"/>.
    /// </summary>
    /// <param name="q">Queries after RoPE: [1, Hq, S, D], bf16 on CUDA.</param>
    /// <param name="k">Keys after RoPE: [1, Hkv, T, D], bf16 on CUDA.</param>
    /// <exception cref="NotSupportedException">The call is one the kernels do not cover.</exception>
    public IReadOnlyList<NativeHeadSelection> Select(Tensor q, Tensor k)
    {
        if (UnsupportedReason(q, k, k) is { } reason) throw new NotSupportedException(reason);
        using var scope = NewDisposeScope();
        var qc = Aligned(q);
        var kc = Aligned(k);
        lock (_gate)
        {
            var p = Describe(qc, kc, kc, null, null);
            NativeMethods.Check(NativeMethods.Select(p));
            var heads = ReadHeads(p);
            NativeMethods.Check(NativeMethods.Layout(p, out int rows, out long causal));
            var result = new NativeHeadSelection[heads.Length];
            for (int h = 0; h < heads.Length; h++)
            {
                var rowPtr = new int[rows + 1];
                var colIdx = new int[causal];
                unsafe
                {
                    fixed (int* rp = rowPtr, ci = colIdx)
                        NativeMethods.Check(NativeMethods.ReadCsr(p, h, rp, ci, causal));
                }
                result[h] = new NativeHeadSelection(h, ToPattern(heads[h].Pattern), heads[h].JsDistance,
                    heads[h].VerticalBlocks, heads[h].SlashBands, rowPtr, colIdx[..rowPtr[rows]]);
            }
            return result;
        }
    }

    /// <summary>Frees the cached device workspace.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _workspace?.Dispose();
            _workspace = null;
        }
    }

    /// <summary>Why the kernels cannot run this call (it then runs on the managed reference), or null.</summary>
    internal string? UnsupportedReason(Tensor q, Tensor k, Tensor v)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
        var device = NativeLibraryLoader.IsEmulated ? DeviceType.CPU : DeviceType.CUDA;
        if (q.device_type != device || k.device_type != device || v.device_type != device)
            return $"tensors are not on a {device} device";
        if (q.dtype != ScalarType.BFloat16 || k.dtype != ScalarType.BFloat16 || v.dtype != ScalarType.BFloat16)
            return $"dtype {q.dtype}: the kernels take bf16";
        if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return "q, k and v must be 4-d";
        if (q.shape[0] != 1) return $"batch {q.shape[0]}: the kernels take batch 1";
        if (q.shape[3] is not (64 or 128)) return $"head dim {q.shape[3]}: the kernels take 64 or 128";
        if (Options.BlockSize is not (64 or 128)) return $"block size {Options.BlockSize}: the kernels take 64 or 128";
        if (!Options.QueryAwareUnionWithVerticalSlash) return "the query-aware-only variant is managed only";
        return null;
    }

    // Last dimension contiguous, other strides multiples of 8 elements and 16-byte aligned pointers: what cp.async needs.
    static Tensor Aligned(Tensor t)
    {
        bool ok = t.stride(3) == 1 && t.stride(1) % 8 == 0 && t.stride(2) % 8 == 0 && DevicePointer(t) % 16 == 0;
        return ok ? t : t.contiguous();
    }

    static nint DevicePointer(Tensor t) => NativeMethods.TensorData(t.Handle);

    NativeParams Describe(Tensor q, Tensor k, Tensor v, Tensor? output, Tensor? lse)
    {
        var p = new NativeParams
        {
            Q = DevicePointer(q), K = DevicePointer(k), V = DevicePointer(v),
            Out = output is null ? 0 : DevicePointer(output),
            Lse = lse is null ? 0 : DevicePointer(lse),
            Stream = 0, // the legacy default stream, where TorchSharp's kernels run
            // q [1, Hq, S, D]: a query row s is dimension 2, a head dimension 1
            QRowStride = q.stride(2), QHeadStride = q.stride(1),
            KRowStride = k.stride(2), KHeadStride = k.stride(1),
            VRowStride = v.stride(2), VHeadStride = v.stride(1),
            OutRowStride = output?.stride(2) ?? q.shape[3], OutHeadStride = output?.stride(1) ?? q.shape[2] * q.shape[3],
            LseHeadStride = lse?.stride(1) ?? q.shape[2],
            Batch = 1, SeqQ = (int)q.shape[2], SeqK = (int)k.shape[2], HeadsQ = (int)q.shape[1], HeadsKv = (int)k.shape[1],
            HeadDim = (int)q.shape[3], BlockSize = Options.BlockSize, MinBudget = Options.MinBudget,
            MaxBudget = Options.MaxBudget ?? 0, Mode = (int)NativeMode.Auto, Variant = 0,
            Gamma = (float)Options.Gamma, Tau = (float)Options.Tau,
        };
        NativeMethods.Check(NativeMethods.WorkspaceSize(p, out ulong bytes));
        const ulong align = 256; // the library's requirement; CUDA's allocator gives it, others need not
        if (_workspace is null || (ulong)_workspace.numel() < bytes + align || _workspace.device_type != q.device_type ||
            _workspace.device_index != q.device_index)
        {
            _workspace?.Dispose();
            _workspace = empty([(long)(bytes + align)], ScalarType.Byte, q.device);
            _workspace.DetachFromDisposeScope();
        }
        nint raw = DevicePointer(_workspace), aligned = (nint)(((ulong)raw + align - 1) & ~(align - 1));
        p.Workspace = aligned;
        p.WorkspaceBytes = (ulong)_workspace.numel() - (ulong)(aligned - raw);
        return p;
    }

    static NativeHeadInfo[] ReadHeads(in NativeParams p)
    {
        var heads = new NativeHeadInfo[p.HeadsQ];
        unsafe
        {
            fixed (NativeHeadInfo* h = heads) NativeMethods.Check(NativeMethods.ReadHeads(p, h));
        }
        return heads;
    }

    static void Record(NativeHeadInfo[] heads, int layer, PrefillStatistics statistics)
    {
        for (int h = 0; h < heads.Length; h++)
        {
            var pattern = ToPattern(heads[h].Pattern);
            statistics.Add(new HeadStatistics(layer, h, pattern, pattern == AttentionPattern.Dense ? double.NaN : heads[h].JsDistance,
                heads[h].ComputedBlocks, heads[h].CausalBlocks));
        }
    }

    static AttentionPattern ToPattern(int native) => native switch
    {
        1 => AttentionPattern.VerticalSlash,
        2 => AttentionPattern.QueryAware,
        _ => AttentionPattern.Dense,
    };
}

/// <summary>One head of a native block selection (see <see cref="NativeFlexPrefillAttention.Select"/>).</summary>
/// <param name="Head">Query head.</param>
/// <param name="Pattern">Pattern chosen.</param>
/// <param name="JsDistance">sqrt(JS) between the estimated and the true block distribution (NaN when dense).</param>
/// <param name="VerticalBlocks">K_v after clamping.</param>
/// <param name="SlashBands">K_s after clamping.</param>
/// <param name="RowPtr">CSR row pointers over the existing query block rows [rows + 1].</param>
/// <param name="ColIdx">Key blocks per row, ascending.</param>
public sealed record NativeHeadSelection(int Head, AttentionPattern Pattern, double JsDistance, int VerticalBlocks, int SlashBands,
    IReadOnlyList<int> RowPtr, IReadOnlyList<int> ColIdx);
