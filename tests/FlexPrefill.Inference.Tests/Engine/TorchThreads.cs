using System.Runtime.CompilerServices;
using TorchSharp;

namespace FlexPrefill.Inference.Tests.Engine;

static class TorchThreads
{
    /// <summary>
    /// The tests' tensors are tiny and the CI machine small and shared: one intra-op thread avoids OpenMP spin-waits
    /// that made a 200-generation test take 200 s instead of 14 s under load. FLEXPREFILL_TEST_THREADS overrides.
    /// </summary>
    [ModuleInitializer]
    internal static void UseFewThreads()
    {
        int threads = int.TryParse(Environment.GetEnvironmentVariable("FLEXPREFILL_TEST_THREADS"), out int n) && n > 0 ? n : 1;
        torch.set_num_threads(threads);
    }
}
