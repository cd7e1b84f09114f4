"""CPU check of the ctypes mirror (flexprefill_ctypes.py) against the built library: struct sizes, a workspace query,
a validation message. Run by ctest where python3 exists: python3 check_binding.py path/to/libflexprefill.so"""
import ctypes as C
import sys

from flexprefill_ctypes import Lib, Params

lib = Lib(sys.argv[1])  # raises on a struct size mismatch
p = Params()
p.batch, p.seq_q, p.seq_k, p.heads_q, p.heads_kv, p.head_dim, p.block_size = 1, 8192, 8192, 32, 8, 128, 128
p.min_budget, p.gamma, p.tau = 1024, 0.95, 0.1
size = C.c_uint64()
lib.check(lib.lib.flexprefill_workspace_size(C.byref(p), C.byref(size)))
assert size.value > 32 * 8192 * 4 * 2, size.value
p.head_dim = 96
status = lib.lib.flexprefill_workspace_size(C.byref(p), C.byref(size))
message = lib.lib.flexprefill_last_error().decode()
assert status == 2 and "head_dim is 96" in message, (status, message)
print(f"binding ok: params {C.sizeof(Params)} bytes, workspace for 8K = {size.value} bytes, {message!r}")
