using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FlexPrefill.Inference.Tests.Tokenization;

/// <summary>Moby Dick (~300K Llama-3 tokens) must tokenize in under a second on the 2-core development machine.</summary>
[Collection(nameof(TokenizerThroughputTests))]
[CollectionDefinition(nameof(TokenizerThroughputTests), DisableParallelization = true)]
public sealed class TokenizerThroughputTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void Moby_Dick_tokenizes_in_under_a_second(string family)
    {
        var tokenizer = TokenizerTestData.Tokenizer(family);
        string path = Path.Combine(TokenizerTestData.DataDirectory, "text", "moby-dick.txt");
        if (!File.Exists(path))
        {
            Assert.Skip($"{path} is missing: run eng/fetch-data.sh");
        }
        string text = File.ReadAllText(path);
        tokenizer.Encode(text[..20_000]); // compile the regex and jit the paths; the BPE cache sees only a sliver
        var wall = new List<double>();
        var cpu = new List<double>();
        int count = 0;
        for (int run = 0; run < 3; run++)
        {
            double cpuStart = ThreadCpuMilliseconds();
            var clock = Stopwatch.StartNew();
            count = tokenizer.Encode(text).Count;
            wall.Add(clock.Elapsed.TotalMilliseconds);
            cpu.Add(ThreadCpuMilliseconds() - cpuStart);
        }
        output.WriteLine($"tokenize moby-dick.txt ({text.Length:N0} chars) {family} [{tokenizer.Backend}]: {count:N0} tokens; " +
            $"wall best {wall.Min():F0} ms (runs {string.Join(" / ", wall.Select(t => t.ToString("F0")))}), " +
            $"thread CPU best {cpu.Min():F0} ms; {count / wall.Min() * 1000:N0} tokens/s wall");
        Assert.InRange(count, 250_000, 350_000);
        // The development machine is shared, so wall time swings with the load; the thread's own CPU time does not.
        double measured = OperatingSystem.IsLinux() ? cpu.Min() : wall.Min();
        Assert.True(measured < 1000, $"best of 3 took {measured:F0} ms");
    }

    private static double ThreadCpuMilliseconds()
    {
        if (!OperatingSystem.IsLinux())
        {
            return 0;
        }
        const int ClockThreadCpuTimeId = 3;
        clock_gettime(ClockThreadCpuTimeId, out var time);
        return time.Seconds * 1000.0 + time.Nanoseconds / 1e6;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc")]
    private static extern int clock_gettime(int clockId, out TimeSpec time);
}
