// The SiLU·mul launcher compiled for the SIMT emulator (see emu.h).
#include "emu.h"
#include "../src/silu.cu"
