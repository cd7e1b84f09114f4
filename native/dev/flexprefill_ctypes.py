"""ctypes mirror of include/flexprefill.h for the GPU benchmark and checks (PyTorch tensors in, device pointers out)."""
import ctypes as C


class Params(C.Structure):
    _fields_ = [
        ("q", C.c_void_p), ("k", C.c_void_p), ("v", C.c_void_p), ("out", C.c_void_p), ("lse", C.c_void_p),
        ("workspace", C.c_void_p), ("stream", C.c_void_p), ("workspace_bytes", C.c_uint64),
        ("q_row_stride", C.c_int64), ("q_head_stride", C.c_int64),
        ("k_row_stride", C.c_int64), ("k_head_stride", C.c_int64),
        ("v_row_stride", C.c_int64), ("v_head_stride", C.c_int64),
        ("out_row_stride", C.c_int64), ("out_head_stride", C.c_int64),
        ("lse_head_stride", C.c_int64),
        ("batch", C.c_int32), ("seq_q", C.c_int32), ("seq_k", C.c_int32), ("heads_q", C.c_int32),
        ("heads_kv", C.c_int32), ("head_dim", C.c_int32), ("block_size", C.c_int32), ("min_budget", C.c_int32),
        ("max_budget", C.c_int32), ("mode", C.c_int32), ("variant", C.c_int32),
        ("gamma", C.c_float), ("tau", C.c_float), ("reserved", C.c_int32),
    ]


class HeadInfo(C.Structure):
    _fields_ = [
        ("pattern", C.c_int32), ("vertical_count", C.c_int32), ("slash_count", C.c_int32),
        ("vertical_blocks", C.c_int32), ("slash_bands", C.c_int32), ("qa_entries", C.c_int32),
        ("computed_blocks", C.c_int64), ("causal_blocks", C.c_int64),
        ("js_distance", C.c_float), ("qa_threshold", C.c_uint32),
    ]


class Lib:
    def __init__(self, path):
        self.lib = C.CDLL(path)
        L = self.lib
        L.flexprefill_last_error.restype = C.c_char_p
        L.flexprefill_version.restype = C.c_char_p
        for name in ("flexprefill_forward", "flexprefill_select"):
            getattr(L, name).argtypes = [C.POINTER(Params)]
        L.flexprefill_workspace_size.argtypes = [C.POINTER(Params), C.POINTER(C.c_uint64)]
        L.flexprefill_read_heads.argtypes = [C.POINTER(Params), C.POINTER(HeadInfo)]
        L.flexprefill_read_csr.argtypes = [C.POINTER(Params), C.c_int32, C.POINTER(C.c_int32), C.POINTER(C.c_int32), C.c_int64]
        L.flexprefill_layout.argtypes = [C.POINTER(Params), C.POINTER(C.c_int32), C.POINTER(C.c_int64)]
        L.flexprefill_abi_sizes.argtypes = [C.POINTER(C.c_int32), C.POINTER(C.c_int32)]
        a, b = C.c_int32(), C.c_int32()
        L.flexprefill_abi_sizes(C.byref(a), C.byref(b))
        if (a.value, b.value) != (C.sizeof(Params), C.sizeof(HeadInfo)):
            raise RuntimeError(f"struct mirror mismatch: library {a.value}/{b.value} bytes, "
                               f"binding {C.sizeof(Params)}/{C.sizeof(HeadInfo)}")

    def check(self, status):
        if status != 0:
            raise RuntimeError(f"flexprefill status {status}: {self.lib.flexprefill_last_error().decode()}")

    def params(self, q, k, v, out, lse, gamma=0.95, tau=0.1, min_budget=1024, block_size=128, mode=0, variant=0):
        """q [S, Hq, D], k/v [T, Hkv, D], out like q, lse [Hq, S] fp32 (or None); bf16 CUDA tensors.
        Each call gets its own workspace, kept alive by the returned struct (p.keep)."""
        import torch

        p = Params()
        p.q, p.k, p.v = q.data_ptr(), k.data_ptr(), v.data_ptr()
        p.out = out.data_ptr() if out is not None else None
        p.lse = lse.data_ptr() if lse is not None else None
        p.stream = torch.cuda.current_stream().cuda_stream
        p.q_row_stride, p.q_head_stride = q.stride(0), q.stride(1)
        p.k_row_stride, p.k_head_stride = k.stride(0), k.stride(1)
        p.v_row_stride, p.v_head_stride = v.stride(0), v.stride(1)
        if out is not None:
            p.out_row_stride, p.out_head_stride = out.stride(0), out.stride(1)
        else:
            p.out_row_stride, p.out_head_stride = q.stride(0), q.stride(1)
        p.lse_head_stride = lse.stride(0) if lse is not None else q.shape[0]
        p.batch, p.seq_q, p.seq_k = 1, q.shape[0], k.shape[0]
        p.heads_q, p.heads_kv, p.head_dim = q.shape[1], k.shape[1], q.shape[2]
        p.block_size, p.min_budget, p.max_budget, p.mode, p.variant = block_size, min_budget, 0, mode, variant
        p.gamma, p.tau = gamma, tau
        size = C.c_uint64()
        self.check(self.lib.flexprefill_workspace_size(C.byref(p), C.byref(size)))
        ws = torch.empty(max(size.value, 256), dtype=torch.uint8, device=q.device)
        p.keep = (ws, q, k, v, out, lse)
        p.workspace, p.workspace_bytes = ws.data_ptr(), ws.numel()
        return p

    def forward(self, p):
        self.check(self.lib.flexprefill_forward(C.byref(p)))

    def select(self, p):
        self.check(self.lib.flexprefill_select(C.byref(p)))

    def heads(self, p):
        arr = (HeadInfo * p.heads_q)()
        self.check(self.lib.flexprefill_read_heads(C.byref(p), arr))
        return list(arr)

    def csr(self, p, head):
        rows, causal = C.c_int32(), C.c_int64()
        self.check(self.lib.flexprefill_layout(C.byref(p), C.byref(rows), C.byref(causal)))
        rp = (C.c_int32 * (rows.value + 1))()
        ci = (C.c_int32 * causal.value)()
        self.check(self.lib.flexprefill_read_csr(C.byref(p), head, rp, ci, causal.value))
        return list(rp), list(ci[: rp[rows.value]])
