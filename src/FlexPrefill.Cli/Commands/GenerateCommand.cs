using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Cli.Commands;

/// <summary><c>flexprefill generate</c>: one prompt in, streamed text (or one JSON object) out.</summary>
static class GenerateCommand
{
    /// <summary>Prompts at least this long get a prefill progress line on stderr.</summary>
    const int ProgressThresholdTokens = 2048;

    public static Command Create()
    {
        var model = CommonOptions.Model();
        var prompt = new Option<string?>("--prompt") { Description = "prompt text (through the chat template unless --raw)", HelpName = "TEXT" };
        var promptFile = new Option<FileInfo>("--prompt-file") { Description = "read the prompt text from a file", HelpName = "FILE" }.AcceptExistingOnly();
        var tokens = CommonOptions.IntList("--tokens", "prompt as token ids, e.g. 1,2,3 (works without tokenizer files)", "IDS");
        var system = new Option<string?>("--system") { Description = "system prompt for the chat template", HelpName = "TEXT" };
        var raw = new Option<bool>("--raw") { Description = "encode the prompt text as is, without the chat template (BOS prepended when the tokenizer has one)" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "most tokens to generate", DefaultValueFactory = _ => 256, HelpName = "N" };
        var temperature = new Option<double>("--temperature") { Description = "sampling temperature; 0 is greedy", DefaultValueFactory = _ => 0.0, HelpName = "T" };
        var topP = new Option<double>("--top-p") { Description = "nucleus sampling mass in (0, 1]", DefaultValueFactory = _ => 1.0, HelpName = "P" };
        var topK = new Option<int>("--top-k") { Description = "keep the K most likely tokens; 0 keeps all", DefaultValueFactory = _ => 0, HelpName = "K" };
        var seed = new Option<long?>("--seed") { Description = "random seed (same seed, same output)", HelpName = "S" };
        var attention = new Option<string>("--attention") { Description = "prefill attention", DefaultValueFactory = _ => "dense" }.AcceptOnlyFromAmong("dense", "flexprefill");
        var gamma = CommonOptions.Gamma();
        var tau = CommonOptions.Tau();
        var minBudget = CommonOptions.MinBudget();
        var device = CommonOptions.Device();
        var dtype = CommonOptions.DType();
        var json = new Option<bool>("--json") { Description = "print one JSON object (text, tokens, counts, timings) instead of streaming text" };

        var command = new Command("generate", "Generate a continuation of a prompt.")
        {
            model, prompt, promptFile, tokens, system, raw, maxTokens, temperature, topP, topK, seed,
            attention, gamma, tau, minBudget, device, dtype, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var sources = new[] { parse.GetResult(prompt), parse.GetResult(promptFile), parse.GetResult(tokens) }.Count(r => r is not null);
            if (sources != 1)
                throw new UsageException("give exactly one of --prompt, --prompt-file, --tokens");
            var ids = parse.GetList(tokens);
            if (ids is not null && (parse.GetValue(raw) || parse.GetValue(system) is not null))
                throw new UsageException("--raw and --system apply to text prompts, not to --tokens");
            if (parse.GetValue(raw) && parse.GetValue(system) is not null)
                throw new UsageException("--system needs the chat template; it cannot be combined with --raw");
            var useFlexPrefill = parse.GetValue(attention) == "flexprefill";
            if (!useFlexPrefill && (parse.GetResult(gamma) ?? parse.GetResult(tau) ?? parse.GetResult(minBudget)) is not null)
                throw new UsageException("--gamma, --tau and --min-budget need --attention flexprefill");

            var options = new GenerationOptions
            {
                MaxTokens = Positive(parse.GetValue(maxTokens), "--max-tokens"),
                Temperature = InRange(parse.GetValue(temperature), "--temperature", 0, double.MaxValue, "≥ 0"),
                TopP = InRange(parse.GetValue(topP), "--top-p", double.Epsilon, 1, "in (0, 1]"),
                TopK = (int)InRange(parse.GetValue(topK), "--top-k", 0, int.MaxValue, "≥ 0"),
                Seed = parse.GetValue(seed),
                Attention = useFlexPrefill ? AttentionMode.FlexPrefill : AttentionMode.Dense,
                FlexPrefill = CommonOptions.FlexPrefillOptions(parse.GetValue(gamma), parse.GetValue(tau), parse.GetValue(minBudget)),
            };
            var promptText = parse.GetValue(prompt) ?? (parse.GetValue(promptFile) is { } file ? await File.ReadAllTextAsync(file.FullName, ct).ConfigureAwait(false) : null);

            var directory = ModelLocator.Resolve(parse.GetValue(model));
            if (useFlexPrefill && parse.GetValue(device) == "cuda" && !ModelFactory.NativeFlexPrefill("cuda", out var whyNotNative))
                parse.InvocationConfiguration.Error.WriteLine($"note: FlexPrefill runs on the managed reference: {whyNotNative}");
            using var lm = ModelFactory.Load(directory, parse.GetValue(device)!, parse.GetValue(dtype));
            var promptTokens = ids is not null
                ? PromptTokens.Check(ids, lm.Config.VocabSize)
                : PromptTokens.FromText(lm, directory, promptText!, parse.GetValue(system), parse.GetValue(raw));
            if (promptText is not null && !parse.GetValue(raw))
                options = options with { StopSequences = lm.ChatTemplate.StopSequences };

            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if (promptTokens.Count >= ProgressThresholdTokens)
                options = options with { PrefillProgress = new PrefillProgressLine(error) };

            var streamText = !parse.GetValue(json);
            GenerationSummary? summary = null;
            await foreach (var update in lm.GenerateAsync(promptTokens, options, ct).ConfigureAwait(false))
            {
                if (streamText)
                {
                    // A folder without tokenizer files has no text to stream: show the ids.
                    output.Write(lm.Tokenizer is null ? $"{update.TokenId} " : update.Text);
                    output.Flush();
                }
                summary = update.Summary ?? summary;
            }
            if (summary is null)
                throw new InvalidOperationException("generation ended without a summary");

            if (streamText)
            {
                output.WriteLine();
                error.WriteLine($"[{summary.PromptTokens} prompt tokens, {summary.CompletionTokens} generated ({summary.FinishReason.ToString().ToLowerInvariant()}), " +
                    $"prefill {summary.PrefillMilliseconds:F1} ms, decode {summary.DecodeTokensPerSecond:F1} tok/s, attention {summary.AttentionBackend}]");
            }
            else
            {
                WriteJson(output, summary, useFlexPrefill);
            }
            return FlexPrefillCli.Success;
        });
        return command;
    }

    static void WriteJson(TextWriter output, GenerationSummary summary, bool flexPrefill)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("text", summary.Text);
            json.WriteStartArray("tokens");
            foreach (var t in summary.Tokens) json.WriteNumberValue(t);
            json.WriteEndArray();
            json.WriteNumber("prompt_tokens", summary.PromptTokens);
            json.WriteNumber("completion_tokens", summary.CompletionTokens);
            json.WriteNumber("prefill_ms", Math.Round(summary.PrefillMilliseconds, 3));
            json.WriteNumber("decode_tokens_per_s", Math.Round(summary.DecodeTokensPerSecond, 3));
            json.WriteString("finish_reason", summary.FinishReason.ToString().ToLowerInvariant());
            json.WriteString("attention_backend", summary.AttentionBackend);
            if (flexPrefill)
                json.WriteNumber("attention_density", Math.Round(summary.Attention?.DensityOfCausalBlocks ?? 1.0, 6));
            json.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    static int Positive(int value, string name) =>
        value >= 1 ? value : throw new UsageException($"{name} must be ≥ 1 (got {value})");

    static double InRange(double value, string name, double min, double max, string range) =>
        value >= min && value <= max ? value : throw new UsageException($"{name} must be {range} (got {value})");
}

/// <summary>Writes "prefill 37% (12/32 layers of 8,192 tokens)" over itself on stderr; a newline when done.</summary>
sealed class PrefillProgressLine(TextWriter error) : IProgress<PrefillProgress>
{
    readonly Stopwatch _clock = Stopwatch.StartNew();
    int _lastPercent = -1;

    public void Report(PrefillProgress value)
    {
        var percent = (int)(value.Fraction * 100);
        if (percent == _lastPercent) return;
        _lastPercent = percent;
        error.Write($"\rprefill {percent,3}% ({value.LayersDone}/{value.Layers} layers of {value.Tokens:N0} tokens, {_clock.Elapsed.TotalSeconds:F1} s)");
        if (percent >= 100)
            error.WriteLine();
        error.Flush();
    }
}
