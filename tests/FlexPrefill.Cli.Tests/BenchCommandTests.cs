using FlexPrefill.Cli.Bench;

namespace FlexPrefill.Cli.Tests;

public sealed class BenchCommandTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("flexprefill-cli-bench-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData(128, 64)]
    [InlineData(8, 8)]
    [InlineData(0, 0)]
    public void The_warm_up_decodes_past_the_jit_tier_up_but_never_longer_than_the_rows(int decodeSteps, int warmup)
    {
        var plan = new BenchmarkPlan([1024, 4096], ["dense"], decodeSteps, new FlexPrefill.Inference.Attention.FlexPrefillOptions());
        Assert.Equal(warmup, plan.WarmupDecodeSteps);
        Assert.Equal(1024, plan.WarmupTokens);
    }

    [Fact]
    public void The_tiny_preset_runs_on_cpu_and_prints_every_column_for_every_row()
    {
        var json = Path.Combine(_folder, "bench.json");
        var png = Path.Combine(_folder, "bench.png");

        var run = CliRun.Of("bench", "--config", "tiny", "--lengths", "64,1024", "--attention", "dense,flexprefill", "--decode-steps", "3",
            "--min-budget", "128", "--gamma", "0.5", "--json", json, "--png", png);

        Assert.True(run.ExitCode == 0, run.Error);
        var lines = run.Output.TrimEnd().Split('\n');
        Assert.Equal(2 + 4, lines.Length);
        foreach (var column in BenchmarkTable.Columns)
            Assert.Contains(column, lines[1]);
        var report = BenchmarkReport.FromJson(File.ReadAllText(json));
        Assert.Equal([(64, "dense"), (64, "flexprefill"), (1024, "dense"), (1024, "flexprefill")], report.Rows.Select(r => (r.Tokens, r.Attention)));
        Assert.All(report.Rows, r =>
        {
            Assert.Null(r.Error);
            Assert.True(r.TtftMs > 0);
            Assert.Equal(3, r.DecodeSteps);
            Assert.Null(r.PeakGpuMb);
        });
        Assert.All(report.Rows.Where(r => r.Attention == "dense"), r => Assert.Equal(1.0, r.Density));
        // 64 tokens is inside FlexPrefill's dense fallback (S ≤ 2 blocks); 1024 tokens (8 blocks) at gamma 0.5 is sparse.
        Assert.Equal(1.0, report.Rows.Single(r => r is { Tokens: 64, Attention: "flexprefill" }).Density);
        Assert.InRange(report.Rows.Single(r => r is { Tokens: 1024, Attention: "flexprefill" }).Density, 0.05, 0.95);
        Assert.True(new FileInfo(png).Length > 10_000);
    }

    [Fact]
    public void A_saved_report_prints_the_same_table_again()
    {
        var json = Path.Combine(_folder, "bench.json");
        var first = CliRun.Of("bench", "--config", "tiny", "--lengths", "32", "--attention", "dense", "--decode-steps", "2", "--json", json);

        var again = CliRun.Of("bench", "--from-json", json);

        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Equal(0, again.ExitCode);
        Assert.Equal(first.Output, again.Output);
    }

    [Fact]
    public void Isolated_rows_run_in_child_processes_and_come_back_in_the_report()
    {
        var json = Path.Combine(_folder, "bench.json");

        var run = CliRun.Of("bench", "--config", "tiny", "--weights", "structured", "--lengths", "32", "--attention", "dense", "--decode-steps", "2",
            "--isolate", "--json", json);

        Assert.True(run.ExitCode == 0, run.Error);
        var report = BenchmarkReport.FromJson(File.ReadAllText(json));
        Assert.Contains("one process per row", report.MemorySource);
        Assert.Equal(32, Assert.Single(report.Rows).Tokens);
        Assert.Contains("run: dense, 32 tokens", run.Error);
        Assert.Contains("model: tiny (structured random weights)", run.Error); // the child built the weights asked for
    }

    [Fact]
    public void Structured_weights_make_flexprefill_select_sparsely_and_the_table_and_json_say_which_weights_ran()
    {
        BenchmarkReport Run(string weights, out string title)
        {
            var json = Path.Combine(_folder, $"{weights}.json");
            var run = CliRun.Of("bench", "--config", "tiny", "--weights", weights, "--lengths", "1024", "--attention", "flexprefill",
                "--decode-steps", "1", "--min-budget", "128", "--json", json);
            Assert.True(run.ExitCode == 0, run.Error);
            title = run.Output.Split('\n')[0];
            return BenchmarkReport.FromJson(File.ReadAllText(json));
        }

        var gaussian = Run("gaussian", out var gaussianTitle);
        var structured = Run("structured", out var structuredTitle);

        Assert.Contains("tiny (gaussian random weights)", gaussianTitle);
        Assert.Contains("tiny (structured random weights)", structuredTitle);
        Assert.Equal("gaussian", gaussian.Weights);
        Assert.Equal("structured", structured.Weights);
        Assert.Contains("structured random weights", structured.Model);
        // Measured at 1,024 tokens (8 blocks of 128, 36 causal blocks a head): Gaussian 0.96, structured 0.58.
        var (g, s) = (gaussian.Rows.Single().Density, structured.Rows.Single().Density);
        Assert.True(g > 0.85 && s < g - 0.2, $"density: Gaussian {g:F3}, structured {s:F3}");
    }

    [Fact]
    public void The_help_names_the_weights_option_and_both_kinds()
    {
        var run = CliRun.Of("bench", "--help");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--weights", run.Output);
        Assert.Contains("gaussian", run.Output);
        Assert.Contains("structured", run.Output);
        Assert.Contains("[default: gaussian]", run.Output);
    }
}
