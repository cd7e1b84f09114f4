using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using FlexPrefill.Cli.Bench;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Models;

namespace FlexPrefill.Cli.Commands;

/// <summary><c>flexprefill bench</c>: time to first token, decode throughput, peak GPU memory and density from short
/// to long prompts, dense against FlexPrefill, on a random-weight preset (Gaussian or structured weights) or a model
/// folder.</summary>
static class BenchCommand
{
    static readonly string[] AttentionNames = ["dense", "flexprefill"];
    static readonly string[] WeightNames = ["gaussian", "structured"];

    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = $"random-weight model built on the device, no file: {string.Join(" | ", BenchmarkPresets.Names)}", HelpName = "NAME" }
            .AcceptOnlyFromAmong(BenchmarkPresets.Names);
        var weights = new Option<string>("--weights")
        {
            Description = "random weights of the --config preset: gaussian (normal(0, 0.02); attention near uniform, so FlexPrefill " +
                "selects almost every block) or structured (the same plus synthetic local attention and vertical stripes, sparse like a " +
                "trained LLM's, so TTFT shows what sparse prefill saves; docs/flexprefill.md)",
            DefaultValueFactory = _ => "gaussian",
            HelpName = "KIND",
        }.AcceptOnlyFromAmong(WeightNames);
        var model = CommonOptions.Model();
        var lengths = CommonOptions.IntList("--lengths", "prompt lengths in tokens (default 8192,32768,65536,131072)", "N,N,...");
        var attention = new Option<string>("--attention") { Description = "attentions to compare: dense, flexprefill or both", DefaultValueFactory = _ => "dense,flexprefill", HelpName = "LIST" };
        var decodeSteps = new Option<int>("--decode-steps") { Description = "decode steps after the first token", DefaultValueFactory = _ => 128, HelpName = "N" };
        var device = CommonOptions.Device();
        var dtype = CommonOptions.DType();
        var gamma = CommonOptions.Gamma();
        var tau = CommonOptions.Tau();
        var minBudget = CommonOptions.MinBudget();
        var png = new Option<FileInfo?>("--png") { Description = "write a plot of the results", HelpName = "FILE" };
        var json = new Option<FileInfo?>("--json") { Description = "write the results as JSON", HelpName = "FILE" };
        var fromJson = new Option<FileInfo>("--from-json") { Description = "run nothing: print the table (and write --png) of a report saved with --json, e.g. on a machine with fonts", HelpName = "FILE" }
            .AcceptExistingOnly();
        var isolate = new Option<bool?>("--isolate") { Description = "run each row in a fresh process so its peak GPU memory is its own (default: true on cuda)" };

        var command = new Command("bench", "Benchmark prefill (time to first token) and decode, dense against FlexPrefill, on a random-weight " +
            "preset (--config, --weights) or a model folder (--model).")
        {
            config, weights, model, lengths, attention, decodeSteps, device, dtype, gamma, tau, minBudget, png, json, isolate, fromJson,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(fromJson) is { } saved)
            {
                var savedReport = BenchmarkReport.FromJson(await File.ReadAllTextAsync(saved.FullName, ct).ConfigureAwait(false));
                return await WriteAsync(savedReport, parse.InvocationConfiguration.Output, null, parse.GetValue(png), ct).ConfigureAwait(false);
            }
            if (parse.GetResult(config) is not null && parse.GetResult(model) is not null)
                throw new UsageException("give --config or --model, not both");
            if (parse.GetResult(weights) is { Implicit: false } && parse.GetResult(config) is null)
                throw new UsageException("--weights chooses the random weights of a --config preset; a model folder brings its own");
            var lengthList = parse.GetList(lengths) ?? [8192, 32768, 65536, 131072];
            foreach (var n in lengthList)
            {
                if (n < 1) throw new UsageException($"--lengths: {n} is not a positive length");
            }
            var attentions = parse.GetValue(attention)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct().ToArray();
            if (attentions.Length == 0 || attentions.Any(a => !AttentionNames.Contains(a)))
                throw new UsageException($"--attention: expected dense, flexprefill or dense,flexprefill (got '{parse.GetValue(attention)}')");
            var steps = parse.GetValue(decodeSteps);
            if (steps < 0)
                throw new UsageException($"--decode-steps must be ≥ 0 (got {steps})");
            var plan = new BenchmarkPlan(lengthList, attentions, steps, CommonOptions.FlexPrefillOptions(parse.GetValue(gamma), parse.GetValue(tau), parse.GetValue(minBudget)));

            var deviceName = parse.GetValue(device)!;
            // A GPU benchmark of the managed reference would spend minutes measuring the wrong thing: refuse it.
            if (attentions.Contains("flexprefill") && deviceName == "cuda" && !ModelFactory.NativeFlexPrefill(deviceName, out var whyNotNative))
                throw new InvalidOperationException($"FlexPrefill on cuda would run on the managed reference: {whyNotNative}");
            var source = parse.GetValue(config) is { } preset
                ? new ModelSource(preset, Enum.Parse<RandomWeightKind>(parse.GetValue(weights)!, ignoreCase: true), null)
                : new ModelSource(null, null, ModelLocator.Resolve(parse.GetValue(model)));
            var settings = new Settings(source, deviceName, parse.GetValue(dtype), plan, string.Join(' ', parse.Tokens.Select(t => t.Value)));
            var error = parse.InvocationConfiguration.Error;

            var report = (parse.GetValue(isolate) ?? deviceName == "cuda")
                ? await RunIsolatedAsync(settings, error, ct).ConfigureAwait(false)
                : await RunInProcessAsync(settings, error, ct).ConfigureAwait(false);

            return await WriteAsync(report, parse.InvocationConfiguration.Output, parse.GetValue(json), parse.GetValue(png), ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>Table on the output, then the files; exit code 1 when a row failed.</summary>
    static async Task<int> WriteAsync(BenchmarkReport report, TextWriter output, FileInfo? json, FileInfo? png, CancellationToken ct)
    {
        output.Write(BenchmarkTable.Format(report));
        if (json is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(json.FullName)!);
            await File.WriteAllTextAsync(json.FullName, report.ToJson(), ct).ConfigureAwait(false);
        }
        if (png is not null)
            BenchmarkPlot.SavePng(report, png.FullName);
        return report.Rows.All(r => r.Error is null) ? FlexPrefillCli.Success : FlexPrefillCli.Failure;
    }

    /// <summary>A preset name with its kind of random weights, or a model folder.</summary>
    sealed record ModelSource(string? Preset, RandomWeightKind? Weights, string? Directory)
    {
        /// <summary>"gaussian" or "structured" for a preset, "checkpoint" for a folder: the report's weights field.</summary>
        public string WeightsName => Weights?.ToString().ToLowerInvariant() ?? "checkpoint";

        public string Describe => Preset is not null ? $"{Preset} ({WeightsName} random weights)" : Path.GetFileName(Directory!.TrimEnd('/'));
    }

    sealed record Settings(ModelSource Source, string Device, string? DType, BenchmarkPlan Plan, string Arguments)
    {
        public string DTypeName => DType ?? (Device == "cuda" ? "bfloat16" : "float32");

        public BenchmarkReport Report(string? gpu, string memorySource, IReadOnlyList<BenchmarkRow> rows) => new(
            DateTimeOffset.UtcNow, "flexprefill " + Arguments, Source.Describe, Source.WeightsName, Device, gpu, DTypeName, Plan.DecodeSteps,
            Plan.FlexPrefill.Gamma, Plan.FlexPrefill.Tau, Plan.FlexPrefill.MinBudget, memorySource, rows);
    }

    static async Task<BenchmarkReport> RunInProcessAsync(Settings settings, TextWriter log, CancellationToken ct)
    {
        // The monitor's baseline must be read before this process touches CUDA.
        string? whyNoMonitor = "cpu run";
        using var memory = settings.Device == "cuda" ? GpuMemoryMonitor.TryStart(out whyNoMonitor) : null;
        if (settings.Device == "cuda" && memory is null)
            log.WriteLine($"peak GPU memory unavailable: {whyNoMonitor}");

        var options = ModelFactory.Options(settings.Device, settings.DType);
        var clock = Stopwatch.StartNew();
        using var model = settings.Source.Preset is { } preset
            ? LanguageModel.CreateRandom(PresetConfig(preset, settings.Plan), options, weights: settings.Source.Weights!.Value)
            : LanguageModel.Load(settings.Source.Directory!, options);
        log.WriteLine($"model: {settings.Source.Describe}, ready in {clock.Elapsed.TotalSeconds:F1} s" +
            (memory is null ? "" : $", {memory.CurrentMiB:N0} MiB on the GPU") + $", decode attention {model.DecodeAttention}");

        var rows = await new BenchmarkRunner(model, settings.Plan, memory, log).RunAsync(ct).ConfigureAwait(false);
        return settings.Report(memory?.DeviceName, memory is null ? $"none ({whyNoMonitor})" : GpuMemoryMonitor.Source, rows);
    }

    /// <summary>The preset's config with its context raised to hold the longest prompt plus the decode steps
    /// (Llama-3.1's 131,072 leaves no room to decode after a 128K prompt; llama3 rope scaling does not depend on it),
    /// and no end-of-sequence ids, so that random weights never stop the decode before the steps asked for.</summary>
    static ModelConfig PresetConfig(string preset, BenchmarkPlan plan)
    {
        var config = JsonNode.Parse(BenchmarkPresets.ConfigJson(preset))!.AsObject();
        var needed = plan.Lengths.Max() + plan.DecodeSteps + 1;
        if (config["max_position_embeddings"]!.GetValue<int>() < needed)
            config["max_position_embeddings"] = needed;
        return ModelConfig.Parse(config, $"the {preset} preset") with { EosTokenIds = [] };
    }

    /// <summary>Each row in a child process (this same command with one length and one attention): the caching
    /// allocator of one row never inflates the next row's peak, and an out-of-memory row cannot poison the others.</summary>
    static async Task<BenchmarkReport> RunIsolatedAsync(Settings settings, TextWriter log, CancellationToken ct)
    {
        var rows = new List<BenchmarkRow>();
        string? gpu = null, memorySource = null;
        foreach (var tokens in settings.Plan.Lengths)
        {
            foreach (var attention in settings.Plan.Attentions)
            {
                var childJson = Path.Combine(Path.GetTempPath(), $"flexprefill-bench-{Environment.ProcessId}-{tokens}-{attention}.json");
                try
                {
                    var (exitCode, lastLine) = await RunChildAsync(ChildArguments(settings, tokens, attention, childJson), log, ct).ConfigureAwait(false);
                    if (File.Exists(childJson))
                    {
                        var child = BenchmarkReport.FromJson(await File.ReadAllTextAsync(childJson, ct).ConfigureAwait(false));
                        rows.AddRange(child.Rows);
                        gpu ??= child.Gpu;
                        memorySource ??= child.MemorySource;
                    }
                    else
                    {
                        rows.Add(BenchmarkRow.Failed(tokens, attention, $"child process exited with {exitCode}: {lastLine}"));
                    }
                }
                finally
                {
                    File.Delete(childJson);
                }
            }
        }
        return settings.Report(gpu, (memorySource ?? "none") + "; one process per row", rows);
    }

    static List<string> ChildArguments(Settings settings, int tokens, string attention, string json)
    {
        List<string> args = ["bench"];
        if (settings.Source.Preset is { } preset) args.AddRange(["--config", preset, "--weights", settings.Source.WeightsName]);
        else args.AddRange(["--model", settings.Source.Directory!]);
        args.AddRange([
            "--lengths", tokens.ToString(CultureInfo.InvariantCulture), "--attention", attention,
            "--decode-steps", settings.Plan.DecodeSteps.ToString(CultureInfo.InvariantCulture), "--device", settings.Device,
            "--gamma", settings.Plan.FlexPrefill.Gamma.ToString("R", CultureInfo.InvariantCulture),
            "--tau", settings.Plan.FlexPrefill.Tau.ToString("R", CultureInfo.InvariantCulture),
            "--min-budget", settings.Plan.FlexPrefill.MinBudget.ToString(CultureInfo.InvariantCulture),
            "--isolate", "false", "--json", json]);
        if (settings.DType is { } dtype) args.AddRange(["--dtype", dtype]);
        return args;
    }

    /// <summary>Runs this executable again; its progress goes to our error writer, its table nowhere.</summary>
    static async Task<(int ExitCode, string LastLine)> RunChildAsync(List<string> args, TextWriter log, CancellationToken ct)
    {
        var start = SelfStartInfo();
        foreach (var a in args) start.ArgumentList.Add(a);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        var lastLine = "";
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.WriteLine(e.Data);
            if (e.Data.Trim().Length > 0) lastLine = e.Data.Trim();
        };
        child.OutputDataReceived += (_, _) => { };
        child.BeginErrorReadLine();
        child.BeginOutputReadLine();
        try
        {
            await child.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            child.Kill(entireProcessTree: true);
            throw;
        }
        return (child.ExitCode, lastLine);
    }

    /// <summary>The apphost when we run as <c>flexprefill</c>; otherwise (tests, <c>dotnet flexprefill.dll</c>) the
    /// dotnet host on our assembly.</summary>
    static ProcessStartInfo SelfStartInfo()
    {
        var process = Environment.ProcessPath;
        if (process is not null && Path.GetFileNameWithoutExtension(process) == "flexprefill")
            return new ProcessStartInfo(process);
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet");
        start.ArgumentList.Add(typeof(BenchCommand).Assembly.Location);
        return start;
    }
}
