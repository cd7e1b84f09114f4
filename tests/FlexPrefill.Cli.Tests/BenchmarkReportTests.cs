using FlexPrefill.Cli.Bench;

namespace FlexPrefill.Cli.Tests;

public sealed class BenchmarkReportTests
{
    static BenchmarkReport Sample() => new(
        new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero), "flexprefill bench --config llama-3.1-8b", "llama-3.1-8b (gaussian random weights)", "gaussian",
        "cuda", "NVIDIA H200", "bfloat16", 128, 0.95, 0.1, 1024, GpuMemoryMonitor.Source,
        [
            new BenchmarkRow(8192, "dense", "dense", 612.26, 13380.4, 95.21, 128, 18250.4, 16000, 1.0),
            new BenchmarkRow(8192, "flexprefill", "flexprefill-native", 401.5, 20403.2, 95.0, 128, 18100, 16000, 0.4567),
            BenchmarkRow.Failed(131072, "dense", "CUDA out of memory"),
        ]);

    [Fact]
    public void The_table_has_the_gpt_fast_columns_in_order_and_one_line_per_row()
    {
        var lines = BenchmarkTable.Format(Sample()).TrimEnd().Split('\n');

        Assert.Equal(5, lines.Length);
        var header = lines[1];
        var positions = BenchmarkTable.Columns.Select(c => header.IndexOf(c, StringComparison.Ordinal)).ToArray();
        Assert.DoesNotContain(-1, positions);
        Assert.Equal(positions.Order(), positions);
        Assert.Contains("NVIDIA H200", lines[0]);
        Assert.Matches(@"^\s*8,192\s+dense\s+612\.3\s+13,380\s+95\.2\s+18,250\s+1\.000$", lines[2]);
        Assert.Matches(@"^\s*8,192\s+flexprefill-native\s+401\.5\s+20,403\s+95\.0\s+18,100\s+0\.457$", lines[3]);
        Assert.Matches(@"^\s*131,072\s+dense\s+failed: CUDA out of memory$", lines[4]);
    }

    [Fact]
    public void Columns_line_up_under_their_headers()
    {
        var lines = BenchmarkTable.Format(Sample()).Split('\n');

        // Right-aligned numeric columns end where their header ends.
        var header = lines[1];
        var ttftEnd = header.IndexOf("TTFT ms", StringComparison.Ordinal) + "TTFT ms".Length;
        Assert.Equal(ttftEnd, lines[2].IndexOf("612.3", StringComparison.Ordinal) + "612.3".Length);
        Assert.Equal(ttftEnd, lines[3].IndexOf("401.5", StringComparison.Ordinal) + "401.5".Length);
    }

    [Fact]
    public void The_json_report_round_trips_failed_rows_included()
    {
        var report = Sample();

        var json = report.ToJson();
        var back = BenchmarkReport.FromJson(json);

        Assert.Contains("\"ttft_ms\": 612.26", json);
        Assert.Contains("\"peak_gpu_mb\": null", json);
        Assert.Contains("\"dtype\": \"bfloat16\"", json);
        Assert.Contains("\"weights\": \"gaussian\"", json);
        Assert.Equal(report.Rows.Count, back.Rows.Count);
        Assert.Equal(report.Rows[0], back.Rows[0]);
        Assert.Equal("CUDA out of memory", back.Rows[2].Error);
        Assert.True(double.IsNaN(back.Rows[2].TtftMs));
        Assert.Equal(report.Gpu, back.Gpu);
    }

    [Fact]
    public void A_report_saved_before_the_weights_field_reads_with_no_weights()
    {
        var json = Sample().ToJson().Replace("\"weights\": \"gaussian\",", "", StringComparison.Ordinal);

        var back = BenchmarkReport.FromJson(json);

        Assert.DoesNotContain("\"weights\"", json);
        Assert.Null(back.Weights);
        Assert.Equal(3, back.Rows.Count);
    }

    [Fact]
    public void The_plot_is_a_png_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"flexprefill-plot-{Guid.NewGuid():N}.png");
        try
        {
            BenchmarkPlot.SavePng(Sample(), path);

            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 10_000, $"a {bytes.Length}-byte PNG is too small to hold three panels");
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Without_nvml_the_gpu_monitor_says_why_instead_of_throwing()
    {
        using var monitor = GpuMemoryMonitor.TryStart(out var whyNot);
        if (monitor is not null)
            Assert.Skip($"this machine has an NVIDIA GPU ({monitor.DeviceName}); the no-driver path cannot be shown here");

        Assert.False(string.IsNullOrWhiteSpace(whyNot));
    }
}
