// The decode-attention launcher compiled for the SIMT emulator (see emu.h).
#include "emu.h"
#include "../src/decode.cu"
