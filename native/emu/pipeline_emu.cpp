// The CUDA pipeline compiled for the SIMT emulator (see emu.h).
#include "emu.h"
#define FLEXPREFILL_CUDA_ARCHS "emulated on the CPU by native/emu"
#include "../src/pipeline.cu"
