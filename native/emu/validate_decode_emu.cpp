// The decode harness (dev/validate_decode.cu) against the emulated kernels: the same checks, on any x86-64 machine.
#include "emu.h"
#include "../dev/validate_decode.cu"
