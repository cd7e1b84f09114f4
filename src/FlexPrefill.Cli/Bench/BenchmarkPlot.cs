using ScottPlot;

namespace FlexPrefill.Cli.Bench;

/// <summary>The report as a PNG: time to first token, decode throughput and peak GPU memory against prompt length,
/// one line per attention backend, every axis from zero.</summary>
static class BenchmarkPlot
{
    public static void SavePng(BenchmarkReport report, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(3);
        var where = report.Gpu ?? report.Device;
        // the model (with its kind of weights) and the device under the first two titles: one line would not fit a panel
        Panel(multiplot.GetPlot(0), report, $"Time to first token\n{report.Model}", "seconds", r => r.TtftMs / 1000);
        Panel(multiplot.GetPlot(1), report, $"Decode after the prompt ({report.DecodeSteps} steps)\n{where}", "tokens / s", r => r.DecodeTokensPerSecond);
        Panel(multiplot.GetPlot(2), report, "Peak GPU memory", "GiB", r => r.PeakGpuMb / 1024);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        multiplot.SavePng(path, 1800, 560);
    }

    static void Panel(Plot plot, BenchmarkReport report, string title, string unit, Func<BenchmarkRow, double?> value)
    {
        plot.Title(title, size: 15);
        plot.XLabel("prompt tokens (K)");
        plot.YLabel(unit);
        var top = 0.0;
        foreach (var group in report.Rows.Where(r => r.Error is null).GroupBy(r => r.Backend))
        {
            var points = group.Select(r => (X: r.Tokens / 1024.0, Y: value(r) ?? double.NaN)).Where(p => double.IsFinite(p.Y)).OrderBy(p => p.X).ToArray();
            if (points.Length == 0) continue;
            var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
            line.LegendText = group.Key;
            line.MarkerSize = 8;
            line.LineWidth = 2;
            top = Math.Max(top, points.Max(p => p.Y));
        }
        if (top == 0)
            plot.Add.Annotation("not measured", Alignment.MiddleCenter);
        var lengths = report.Rows.Select(r => r.Tokens / 1024.0).Distinct().Order().ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(lengths.Select(x => new Tick(x, $"{x:0.##}")).ToArray());
        plot.Axes.SetLimits(0, lengths.DefaultIfEmpty(1).Max() * 1.06, 0, top > 0 ? top * 1.18 : 1);
        plot.ShowLegend(Alignment.UpperLeft);
    }
}
