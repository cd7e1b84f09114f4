using System.Runtime.InteropServices;
using System.Text;

namespace FlexPrefill.Cli.Bench;

/// <summary>
/// Peak GPU memory of this process, read through NVML (libnvidia-ml.so.1, part of every NVIDIA driver) because
/// TorchSharp 0.107 exposes none of torch.cuda's memory statistics (no max_memory_allocated, memory_reserved or
/// mem_get_info). A background thread samples the device's used memory every millisecond; the peak is reported
/// minus the reading taken when the monitor started (before this process touched CUDA), so it is this process's
/// footprint: weights, KV cache, activations, the caching allocator's reserve and the CUDA context. It assumes no other
/// process allocates on the device meanwhile. NVML needs no CUDA context, so sampling never disturbs the streams.
/// </summary>
sealed class GpuMemoryMonitor : IDisposable
{
    readonly IntPtr _device;
    readonly ulong _baseline;
    readonly Thread _sampler;
    volatile bool _stop;
    long _peak;

    GpuMemoryMonitor(IntPtr device, string name)
    {
        _device = device;
        DeviceName = name;
        _baseline = Used();
        _peak = (long)_baseline;
        _sampler = new Thread(Sample) { IsBackground = true, Name = "nvml-sampler" };
        _sampler.Start();
    }

    /// <summary>Where the numbers come from, for the report.</summary>
    public const string Source = "NVML device used memory, sampled every 1 ms, minus the reading before the process used CUDA";

    /// <summary>The GPU's name ("NVIDIA H200").</summary>
    public string DeviceName { get; }

    /// <summary>Starts monitoring the GPU that CUDA calls device 0, or returns null (with the reason) when NVML is absent.</summary>
    public static GpuMemoryMonitor? TryStart(out string? whyNot)
    {
        try
        {
            Check(Nvml.nvmlInit_v2(), "nvmlInit_v2");
            var device = VisibleDevice();
            var name = new byte[96];
            Check(Nvml.nvmlDeviceGetName(device, name, (uint)name.Length), "nvmlDeviceGetName");
            whyNot = null;
            return new GpuMemoryMonitor(device, Encoding.ASCII.GetString(name).TrimEnd('\0'));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or InvalidOperationException)
        {
            whyNot = e.Message;
            return null;
        }
    }

    /// <summary>Device memory used now minus the baseline, in MiB.</summary>
    public double CurrentMiB => ToMiB((long)Used() - (long)_baseline);

    /// <summary>Highest sample since the last <see cref="ResetPeak"/>, minus the baseline, in MiB.</summary>
    public double PeakMiB
    {
        get
        {
            Observe(Used());
            return ToMiB(Interlocked.Read(ref _peak) - (long)_baseline);
        }
    }

    /// <summary>Starts a new peak from the current reading.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peak, (long)Used());

    public void Dispose()
    {
        _stop = true;
        _sampler.Join();
        Nvml.nvmlShutdown();
    }

    void Sample()
    {
        while (!_stop)
        {
            Observe(Used());
            Thread.Sleep(1);
        }
    }

    void Observe(ulong used)
    {
        long seen;
        do
        {
            seen = Interlocked.Read(ref _peak);
            if ((long)used <= seen) return;
        }
        while (Interlocked.CompareExchange(ref _peak, (long)used, seen) != seen);
    }

    ulong Used()
    {
        Check(Nvml.nvmlDeviceGetMemoryInfo(_device, out var memory), "nvmlDeviceGetMemoryInfo");
        return memory.Used;
    }

    static double ToMiB(long bytes) => Math.Max(0, bytes) / (1024.0 * 1024.0);

    /// <summary>NVML numbers GPUs by PCI order, CUDA by CUDA_VISIBLE_DEVICES: follow its first entry when set.</summary>
    static IntPtr VisibleDevice()
    {
        var visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES")?.Split(',')[0].Trim();
        IntPtr device;
        if (!string.IsNullOrEmpty(visible) && visible.StartsWith("GPU-", StringComparison.Ordinal))
            Check(Nvml.nvmlDeviceGetHandleByUUID(visible, out device), "nvmlDeviceGetHandleByUUID");
        else
            Check(Nvml.nvmlDeviceGetHandleByIndex_v2(uint.TryParse(visible, out var index) ? index : 0, out device), "nvmlDeviceGetHandleByIndex_v2");
        return device;
    }

    static void Check(int status, string function)
    {
        if (status != 0)
            throw new InvalidOperationException($"{function} returned NVML error {status}");
    }

    [StructLayout(LayoutKind.Sequential)]
    struct NvmlMemory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    static class Nvml
    {
        const string Library = "libnvidia-ml.so.1";
        [DllImport(Library)] public static extern int nvmlInit_v2();
        [DllImport(Library)] public static extern int nvmlShutdown();
        [DllImport(Library)] public static extern int nvmlDeviceGetHandleByIndex_v2(uint index, out IntPtr device);
        [DllImport(Library, CharSet = CharSet.Ansi, BestFitMapping = false)] public static extern int nvmlDeviceGetHandleByUUID(string uuid, out IntPtr device);
        [DllImport(Library)] public static extern int nvmlDeviceGetName(IntPtr device, byte[] name, uint length);
        [DllImport(Library)] public static extern int nvmlDeviceGetMemoryInfo(IntPtr device, out NvmlMemory memory);
    }
}
