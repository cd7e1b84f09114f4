using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using FlexPrefill.Inference.Attention;
using TorchSharp;

namespace FlexPrefill.Cli;

/// <summary>Options several commands share, built fresh for each command, and their parsers.</summary>
static class CommonOptions
{
    public static Option<DirectoryInfo> Model() =>
        new Option<DirectoryInfo>("--model") { Description = "Hugging Face model folder (config.json, *.safetensors, tokenizer.json); default: the embedded models/default", HelpName = "DIR" }
            .AcceptExistingOnly();

    public static Option<string> Device() =>
        new Option<string>("--device") { Description = "cpu or cuda", DefaultValueFactory = _ => "cpu" }.AcceptOnlyFromAmong("cpu", "cuda");

    public static Option<string?> DType() =>
        new Option<string?>("--dtype") { Description = "compute dtype (default: bfloat16 on cuda, float32 on cpu)" }.AcceptOnlyFromAmong("float32", "bfloat16", "float16");

    public static Option<int[]?> IntList(string name, string description, string helpName) =>
        new(name) { Description = description, HelpName = helpName, CustomParser = r => ParseIntList(r, name) };

    /// <summary>The list given with <paramref name="option"/>, or null when it was not on the command line (the parser
    /// would otherwise report an empty array for an absent option with a custom parser).</summary>
    public static int[]? GetList(this ParseResult parse, Option<int[]?> option) =>
        parse.GetResult(option) is null ? null : parse.GetValue(option);

    public static Option<double?> Gamma() => new("--gamma") { Description = "FlexPrefill: attention mass the selected blocks cover, in (0, 1] (default 0.95)" };
    public static Option<double?> Tau() => new("--tau") { Description = "FlexPrefill: JS-distance threshold for the query-aware pattern, in [0, 1] (default 0.1)" };
    public static Option<int?> MinBudget() => new("--min-budget") { Description = "FlexPrefill: minimum tokens each head computes (default 1024)", HelpName = "TOKENS" };

    /// <summary>Comma-separated integers ("1,2,3"; negative values allowed); an error on the option otherwise.</summary>
    static int[]? ParseIntList(ArgumentResult result, string name)
    {
        var text = string.Join(",", result.Tokens.Select(t => t.Value));
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            result.AddError($"{name} needs a comma-separated list of integers");
            return null;
        }
        var values = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out values[i]))
            {
                result.AddError($"{name}: '{parts[i]}' is not an integer");
                return null;
            }
        }
        return values;
    }

    /// <summary>The TorchSharp dtype named by --dtype, or null for the engine's default.</summary>
    public static torch.ScalarType? ToScalarType(string? dtype) => dtype switch
    {
        null => null,
        "float32" => torch.ScalarType.Float32,
        "bfloat16" => torch.ScalarType.BFloat16,
        "float16" => torch.ScalarType.Float16,
        _ => throw new UsageException($"unknown --dtype '{dtype}'"),
    };

    /// <summary>FlexPrefill options from --gamma/--tau/--min-budget over the defaults, validated (out of range: exit 2).</summary>
    public static FlexPrefillOptions FlexPrefillOptions(double? gamma, double? tau, int? minBudget)
    {
        var defaults = new FlexPrefillOptions();
        var options = defaults with
        {
            Gamma = gamma ?? defaults.Gamma,
            Tau = tau ?? defaults.Tau,
            MinBudget = minBudget ?? defaults.MinBudget,
        };
        try
        {
            return options.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new UsageException($"--{e.ParamName switch { "Gamma" => "gamma", "Tau" => "tau", "MinBudget" => "min-budget", var p => p }}: {e.Message.Split(" (Parameter")[0].Split(Environment.NewLine)[0]}");
        }
    }
}
