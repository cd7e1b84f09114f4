// The RMSNorm launcher compiled for the SIMT emulator (see emu.h).
#include "emu.h"
#include "../src/norm.cu"
