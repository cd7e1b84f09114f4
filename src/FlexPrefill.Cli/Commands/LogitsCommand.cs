using System.CommandLine;
using System.Text.Json;

namespace FlexPrefill.Cli.Commands;

/// <summary><c>flexprefill logits</c>: the model's logits over the vocabulary at chosen positions, as JSON.</summary>
static class LogitsCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var tokens = CommonOptions.IntList("--tokens", "input token ids, e.g. 1,2,3", "IDS");
        tokens.Required = true;
        var positions = CommonOptions.IntList("--positions", "positions to report, e.g. 0,5,-1 (negative counts from the end; default -1, the last)", "POS");
        var device = CommonOptions.Device();
        var dtype = CommonOptions.DType();

        var command = new Command("logits", "Print the logits at chosen positions as JSON: {\"positions\": {\"0\": [...], ...}}.")
        {
            model, tokens, positions, device, dtype,
        };
        command.SetAction(async (parse, ct) =>
        {
            var ids = parse.GetList(tokens)!;
            var requested = (parse.GetList(positions) ?? [-1]).Distinct().ToArray();
            var absolute = requested.Select(p => Absolute(p, ids.Length)).ToArray();

            var directory = ModelLocator.Resolve(parse.GetValue(model));
            using var lm = ModelFactory.Load(directory, parse.GetValue(device)!, parse.GetValue(dtype));
            PromptTokens.Check(ids, lm.Config.VocabSize);
            var logits = await lm.LogitsAsync(ids, absolute.Distinct().ToArray(), ct).ConfigureAwait(false);

            // Keys are the positions as requested ("-1" stays "-1"), so callers look up what they asked for.
            using var stream = new MemoryStream();
            using (var json = new Utf8JsonWriter(stream))
            {
                json.WriteStartObject();
                json.WriteNumber("num_tokens", ids.Length);
                json.WriteStartObject("positions");
                for (var i = 0; i < requested.Length; i++)
                {
                    var values = logits[absolute[i]];
                    if (!values.All(float.IsFinite))
                        throw new InvalidOperationException($"the logits at position {requested[i]} are not finite (NaN or infinity); try --dtype float32");
                    json.WriteStartArray(requested[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
                    foreach (var v in values) json.WriteNumberValue(v);
                    json.WriteEndArray();
                }
                json.WriteEndObject();
                json.WriteEndObject();
            }
            parse.InvocationConfiguration.Output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
            return FlexPrefillCli.Success;
        });
        return command;
    }

    static int Absolute(int position, int length)
    {
        var p = position < 0 ? length + position : position;
        return p >= 0 && p < length
            ? p
            : throw new UsageException($"--positions: {position} is outside the {length} tokens (valid: -{length}..{length - 1})");
    }
}
