using System.Globalization;
using System.Text.Json;

namespace FlexPrefill.Cli.Tests;

public sealed class LogitsAndInspectTests : IDisposable
{
    readonly TinyModelFolder _model = TinyModelFolder.Create();

    public void Dispose() => _model.Dispose();

    Dictionary<string, float[]> Logits(params string[] extra)
    {
        var run = CliRun.Of(["logits", "--model", _model.Path, .. extra]);
        Assert.True(run.ExitCode == 0, run.Error);
        return JsonDocument.Parse(run.Output).RootElement.GetProperty("positions").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(v => v.GetSingle()).ToArray());
    }

    [Fact]
    public void Logits_are_keyed_by_the_requested_positions_negative_ones_included()
    {
        var logits = Logits("--tokens", "5,6,7,8", "--positions", "0,-1,3,-4");

        Assert.Equal(["0", "-1", "3", "-4"], logits.Keys);
        Assert.All(logits.Values, v => Assert.Equal(_model.VocabSize, v.Length));
        Assert.Equal(logits["3"], logits["-1"]);
        Assert.Equal(logits["0"], logits["-4"]);
        Assert.NotEqual(logits["0"], logits["3"]);
    }

    [Fact]
    public void Logits_default_to_the_last_position()
    {
        var all = Logits("--tokens", "5,6,7,8", "--positions", "3");
        var last = Logits("--tokens", "5,6,7,8");

        Assert.Equal(["-1"], last.Keys);
        Assert.Equal(all["3"], last["-1"]);
    }

    [Fact]
    public void Logits_of_a_prefix_do_not_see_later_tokens()
    {
        var longer = Logits("--tokens", "5,6,7,8", "--positions", "1");
        var shorter = Logits("--tokens", "5,6", "--positions", "1");

        for (var i = 0; i < _model.VocabSize; i++)
            Assert.Equal(shorter["1"][i], longer["1"][i], 1e-4f);
    }

    [Fact]
    public void Inspect_describes_architecture_parameters_context_dtypes_and_tokenizer()
    {
        var run = CliRun.Of("inspect", "--model", _model.Path);

        Assert.True(run.ExitCode == 0, run.Error);
        var lines = run.Output.Split('\n').ToDictionary(l => l.Length > 16 ? l[..16].Trim() : l.Trim(), l => l.Length > 16 ? l[16..] : "");
        Assert.StartsWith("llama: 2 layers, hidden 32, 4 query / 2 KV heads of 8, FFN 64, vocab 320", lines["architecture"]);
        Assert.StartsWith(_model.Parameters.ToString("N0", CultureInfo.InvariantCulture) + " ", lines["parameters"]);
        Assert.StartsWith("2,048 tokens", lines["context length"]);
        Assert.StartsWith("float32", lines["stored dtypes"]);
        Assert.StartsWith("none", lines["tokenizer"]);
        Assert.StartsWith("llama3", lines["chat template"]);
    }

    [Fact]
    public void Inspect_reports_the_tokenizer_it_finds()
    {
        using var model = TinyModelFolder.CreateWithLlama3Tokenizer();
        if (model is null)
            Assert.Skip("the Llama-3 tokenizer is not in the test data (run eng/fetch-data.sh)");

        var run = CliRun.Of("inspect", "--model", model.Path);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("tokenizer.json", run.Output);
        Assert.Contains("vocab 128256, bos 128000", run.Output);
    }
}
