using System.Globalization;
using System.Text;

namespace FlexPrefill.Cli.Bench;

/// <summary>The report as a plain-text table, gpt-fast style: one row per prompt length and attention.</summary>
static class BenchmarkTable
{
    public static readonly string[] Columns = ["N", "attention", "TTFT ms", "prefill tok/s", "decode tok/s", "peak GPU MB", "density"];

    public static string Format(BenchmarkReport report)
    {
        var cells = report.Rows.Select(Cells).ToList();
        var widths = new int[Columns.Length];
        for (var i = 0; i < Columns.Length; i++)
            widths[i] = cells.Where(c => c.Length > i).Select(c => c[i].Length).Append(Columns[i].Length).Max();

        var text = new StringBuilder();
        text.AppendLine(Title(report));
        text.AppendLine(Line(Columns, widths));
        foreach (var (row, c) in report.Rows.Zip(cells))
            text.AppendLine(row.Error is null ? Line(c, widths) : $"{c[0].PadLeft(widths[0])}  {c[1].PadRight(widths[1])}  failed: {row.Error}");
        return text.ToString();
    }

    static string Title(BenchmarkReport r) =>
        string.Create(CultureInfo.InvariantCulture,
            $"flexprefill bench: {r.Model} on {r.Device}{(r.Gpu is null ? "" : $" ({r.Gpu})")}, {r.DType}, {r.DecodeSteps} decode steps; " +
            $"FlexPrefill gamma {r.Gamma} tau {r.Tau} min budget {r.MinBudget}");

    /// <summary>A failed row keeps N and attention and puts the reason where the numbers would be.</summary>
    static string[] Cells(BenchmarkRow r) => r.Error is null
        ? [N(r.Tokens), r.Backend, F(r.TtftMs, 1), N(r.PrefillTokensPerSecond), F(r.DecodeTokensPerSecond, 1), r.PeakGpuMb is { } mb ? N(mb) : "-", F(r.Density, 3)]
        : [N(r.Tokens), r.Attention];

    /// <summary>Numbers right-aligned, the attention column left-aligned.</summary>
    static string Line(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("  ", cells.Select((c, i) => i == 1 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd();

    static string N(double value) => value.ToString("N0", CultureInfo.InvariantCulture);
    static string F(double value, int digits) => value.ToString("F" + digits, CultureInfo.InvariantCulture);
}
