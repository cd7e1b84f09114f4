using FlexPrefill.Inference.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Native;

/// <summary>
/// Decode attention on libflexprefill's flash-decoding kernel (<c>flexprefill_decode</c>): the KV cache views are read
/// in place, each K/V row once for all the query heads of its group, on the legacy default stream where TorchSharp's
/// kernels run. Batch 1 with one query, as the engine decodes; anything else throws. Calls the kernel does not take
/// because of the model (tensors off the library's device, dtypes other than bf16, head dims other than 64/128) run
/// the two matmuls of <see cref="DenseDecodeAttention"/>, so the automatic choice is safe for any model.
/// </summary>
public sealed class NativeDecodeAttention : IDecodeAttention, IDisposable
{
    const ulong Align = 256; // the library's workspace alignment; CUDA's allocator gives it, the CPU's need not
    readonly DenseDecodeAttention _managed = new();
    readonly object _gate = new();
    Tensor? _workspace;

    /// <summary>Loads the library.</summary>
    /// <param name="libraryPath">libflexprefill.so; null for FLEXPREFILL_NATIVE or the default search.</param>
    /// <exception cref="FlexPrefillException">The library is missing or does not match this binding.</exception>
    public NativeDecodeAttention(string? libraryPath = null) => LibraryPath = NativeLibraryLoader.Load(libraryPath);

    /// <summary>
    /// The native kernel when libflexprefill loads and sees a CUDA device, else <see cref="DenseDecodeAttention"/>:
    /// the automatic choice for <c>ModelLoadOptions.DecodeAttention</c> on CUDA.
    /// </summary>
    /// <param name="libraryPath">As for the constructor.</param>
    public static IDecodeAttention CreateOrManaged(string? libraryPath = null) =>
        NativeLibraryLoader.IsAvailable(libraryPath) ? new NativeDecodeAttention(libraryPath) : new DenseDecodeAttention();

    /// <summary>Where the library was loaded from.</summary>
    public string LibraryPath { get; }

    /// <inheritdoc />
    public string Name => "native";

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">Batch or query count other than 1.</exception>
    /// <exception cref="FlexPrefillException">The library rejected the call (its message says why).</exception>
    public Tensor Forward(Tensor q, Tensor keys, Tensor values)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        if (q.dim() != 4 || keys.dim() != 4 || values.dim() != 4) throw new ArgumentException("q, keys and values must be [B, H, T, D]");
        if (q.size(0) != 1) throw new NotSupportedException($"batch {q.size(0)}: the native decode kernel takes batch 1");
        if (q.size(2) != 1) throw new NotSupportedException($"{q.size(2)} query positions: decode attention takes one");
        if (ManagedReason(q, keys, values) is not null) return _managed.Forward(q, keys, values);
        q = Aligned(q);
        keys = Aligned(keys);
        values = Aligned(values);
        long hq = q.size(1), d = q.size(3);
        var output = empty([1, hq, 1, d], q.dtype, q.device); // [B, Hq, 1, D]
        var p = new NativeParams
        {
            Q = DevicePointer(q), K = DevicePointer(keys), V = DevicePointer(values), Out = DevicePointer(output),
            Stream = 0, // the legacy default stream, where TorchSharp's kernels run
            QRowStride = RowStride(q), QHeadStride = q.stride(1),
            KRowStride = RowStride(keys), KHeadStride = keys.stride(1),
            VRowStride = RowStride(values), VHeadStride = values.stride(1),
            OutRowStride = hq * d, OutHeadStride = d, LseHeadStride = 1,
            Batch = 1, SeqQ = 1, SeqK = (int)keys.size(2), HeadsQ = (int)hq, HeadsKv = (int)keys.size(1), HeadDim = (int)d,
        };
        lock (_gate)
        {
            NativeMethods.Check(NativeMethods.DecodeWorkspaceSize(p, out ulong bytes));
            if (bytes > 0) (p.Workspace, p.WorkspaceBytes) = Workspace(bytes, q.device);
            NativeMethods.Check(NativeMethods.Decode(p));
        }
        return output;
    }

    /// <summary>Frees the cached workspace.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _workspace?.Dispose();
            _workspace = null;
        }
    }

    /// <summary>Why the kernel does not take this model's tensors (they then go through the two matmuls), or null.</summary>
    internal static string? ManagedReason(Tensor q, Tensor keys, Tensor values)
    {
        var device = NativeLibraryLoader.IsEmulated ? DeviceType.CPU : DeviceType.CUDA;
        if (q.device_type != device || keys.device_type != device || values.device_type != device)
            return $"tensors are not on a {device} device";
        if (q.dtype != ScalarType.BFloat16 || keys.dtype != ScalarType.BFloat16 || values.dtype != ScalarType.BFloat16)
            return $"dtype {q.dtype}: the kernel takes bf16";
        if (q.size(3) is not (64 or 128)) return $"head dim {q.size(3)}: the kernel takes 64 or 128";
        return null;
    }

    // The workspace of at least `bytes`, 256-byte aligned, grown when a call needs more (it never shrinks as T grows).
    (nint Pointer, ulong Bytes) Workspace(ulong bytes, Device device)
    {
        if (_workspace is null || (ulong)_workspace.numel() < bytes + Align || _workspace.device_type != device.type ||
            _workspace.device_index != device.index)
        {
            _workspace?.Dispose();
            _workspace = empty([(long)(bytes + Align)], ScalarType.Byte, device).DetachFromDisposeScope();
        }
        nint raw = DevicePointer(_workspace), aligned = (nint)(((ulong)raw + Align - 1) & ~(Align - 1));
        return (aligned, (ulong)_workspace.numel() - (ulong)(aligned - raw));
    }

    // Last dimension contiguous, head and row strides multiples of 8 elements, a 16-byte aligned pointer: what the
    // kernel's 16-byte copies need. The KV cache's views and the model's queries already are.
    static Tensor Aligned(Tensor t)
    {
        bool ok = t.stride(3) == 1 && t.stride(1) % 8 == 0 && (t.size(2) == 1 || t.stride(2) % 8 == 0) && DevicePointer(t) % 16 == 0;
        return ok ? t : t.contiguous();
    }

    // A dimension of size 1 may have any stride in libtorch and is never stepped along: D passes the library's check.
    static long RowStride(Tensor t) => t.size(2) == 1 ? t.size(3) : t.stride(2);

    static nint DevicePointer(Tensor t) => NativeMethods.TensorData(t.Handle);
}
