// The SiLU·mul harness (dev/validate_silu.cu) against the emulated kernel: the same checks, on any x86-64 machine.
#include "emu.h"
#include "../dev/validate_silu.cu"
