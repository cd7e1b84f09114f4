using System.CommandLine;
using System.Globalization;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Models;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Cli.Commands;

/// <summary><c>flexprefill inspect</c>: what a model folder holds, from its config and file headers (no weights are read).</summary>
static class InspectCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var command = new Command("inspect", "Describe a model folder: architecture, parameters, context, dtypes, tokenizer, chat template.") { model };
        command.SetAction(parse =>
        {
            var directory = ModelLocator.Resolve(parse.GetValue(model));
            var config = ModelConfig.Load(Path.Combine(directory, "config.json"));
            var weights = SafetensorsSummary.Read(directory);
            var output = parse.InvocationConfiguration.Output;
            void Line(string name, string value) => output.WriteLine($"{name,-16}{value}");

            Line("model", directory);
            Line("architecture", $"{config.ModelType}: {config.NumLayers} layers, hidden {config.HiddenSize}, {config.NumHeads} query / {config.NumKvHeads} KV heads of {config.HeadDim}, " +
                $"FFN {config.IntermediateSize}, vocab {config.VocabSize}{(config.AttentionBias ? ", q/k/v bias" : "")}{(config.TieWordEmbeddings ? ", tied embeddings" : "")}");
            Line("parameters", $"{weights.Parameters.ToString("N0", CultureInfo.InvariantCulture)} ({Human(weights.Parameters)}) in {weights.Tensors} tensors, {weights.Files.Count} file(s)");
            Line("context length", $"{config.ContextLength.ToString("N0", CultureInfo.InvariantCulture)} tokens (rope {config.Rope.Type.ToString().ToLowerInvariant()}, theta {config.Rope.Theta.ToString(CultureInfo.InvariantCulture)}" +
                (config.Rope.Factor != 1 ? $", factor {config.Rope.Factor.ToString(CultureInfo.InvariantCulture)}" : "") + ")");
            Line("stored dtypes", string.Join(", ", weights.ParametersByDType.Select(d => $"{StoredName(d.Key)} ({Human(d.Value)})")));
            Line("compute dtype", "float32 on cpu, bfloat16 on cuda (--dtype to choose)");
            Line("tokenizer", Tokenizer(directory));
            Line("chat template", ChatTemplate(directory, config.ModelType));
            return FlexPrefillCli.Success;
        });
        return command;
    }

    static string Tokenizer(string directory)
    {
        if (!File.Exists(Path.Combine(directory, "tokenizer.json")))
            return "none (no tokenizer.json: prompts must be given as --tokens)";
        var tokenizer = HfTokenizer.Load(directory);
        return $"tokenizer.json, {tokenizer.Backend}, vocab {tokenizer.VocabSize}, bos {tokenizer.BosId?.ToString(CultureInfo.InvariantCulture) ?? "none"}, " +
            $"eos {(tokenizer.EosIds.Count == 0 ? "none" : string.Join(",", tokenizer.EosIds))}";
    }

    static string ChatTemplate(string directory, string modelType)
    {
        string name;
        try
        {
            name = ChatTemplates.ForModel(directory, modelType).Name;
        }
        catch (ModelLoadException e)
        {
            return $"none ({e.Message})";
        }
        var shipped = File.Exists(Path.Combine(directory, "chat_template.jinja")) || File.Exists(Path.Combine(directory, "chat_template.json"))
            || (File.Exists(Path.Combine(directory, "tokenizer_config.json")) && File.ReadAllText(Path.Combine(directory, "tokenizer_config.json")).Contains("\"chat_template\"", StringComparison.Ordinal));
        return shipped ? $"{name} (matched to the folder's Jinja chat template)" : $"{name} (by model_type {modelType}; the folder ships no chat template)";
    }

    static string StoredName(string safetensorsDType) => safetensorsDType switch
    {
        "F32" => "float32",
        "BF16" => "bfloat16",
        "F16" => "float16",
        var other => other,
    };

    static string Human(long count) => count switch
    {
        >= 1_000_000_000 => (count / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + " B",
        >= 1_000_000 => (count / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + " M",
        >= 1_000 => (count / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + " K",
        _ => count.ToString(CultureInfo.InvariantCulture),
    };
}
