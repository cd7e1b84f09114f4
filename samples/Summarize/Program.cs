// A whole-document summary in one long-context call, next to Semantic Kernel's TextChunker map-reduce baseline
// (summarise each chunk, then the summaries) on the same document: both outputs, tokens and times.
using System.CommandLine;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tokenization;
using FlexPrefill.Samples;
using FlexPrefill.SemanticKernel;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Spectre.Console;

var modelOption = new Option<string?>("--model") { Description = $"Hugging Face model folder (default: {SampleFiles.DefaultModel} of this repository)" };
var documentOption = new Option<string?>("--document") { Description = $"Text file to summarise (default: {SampleFiles.DefaultDocument})" };
var deviceOption = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
var attentionOption = new Option<string>("--attention")
{
    Description = "Prefill attention; auto = flexprefill on CUDA, dense on the CPU (where the managed FlexPrefill reference is slower than dense)",
    DefaultValueFactory = _ => "auto",
};
attentionOption.AcceptOnlyFromAmong("auto", "dense", "flexprefill");
var chunkOption = new Option<int>("--chunk-tokens") { Description = "Chunk size of the map-reduce baseline, in tokens", DefaultValueFactory = _ => 2048 };
var maxTokensOption = new Option<int>("--max-tokens") { Description = "Most tokens per summary", DefaultValueFactory = _ => 96 };

var root = new RootCommand("Summarises a long document in one call and by map-reduce over TextChunker chunks.")
{
    modelOption, documentOption, deviceOption, attentionOption, chunkOption, maxTokensOption,
};
root.SetAction((parse, ct) => SampleConsole.RunAsync(() => RunAsync(parse.GetValue(modelOption), parse.GetValue(documentOption), parse.GetValue(deviceOption)!,
    parse.GetValue(attentionOption)!, parse.GetValue(chunkOption), parse.GetValue(maxTokensOption), ct)));
return await root.Parse(args).InvokeAsync();

static async Task<int> RunAsync(string? modelArg, string? documentArg, string device, string attention, int chunkTokens, int maxTokens, CancellationToken ct)
{
    string? model = modelArg ?? SampleFiles.Find(SampleFiles.DefaultModel);
    if (model is null || !File.Exists(Path.Combine(model, "config.json")))
        return SampleConsole.Fail($"no model folder with a config.json at '{modelArg ?? SampleFiles.DefaultModel}'; pass --model DIR", 2);
    string? documentPath = documentArg ?? SampleFiles.Find(SampleFiles.DefaultDocument);
    if (documentPath is null || !File.Exists(documentPath))
        return SampleConsole.Fail($"document '{documentArg ?? SampleFiles.DefaultDocument}' not found", 2);
    if (chunkTokens < 64) return SampleConsole.Fail("--chunk-tokens must be at least 64", 2);

    model = Path.GetFullPath(model);
    var document = LongDocument.Load(documentPath);
    if (attention == "auto") attention = device.StartsWith("cuda", StringComparison.Ordinal) ? "flexprefill" : "dense";
    var builder = Kernel.CreateBuilder();
    builder.AddFlexPrefillChatCompletion(o =>
    {
        o.ModelPath = model;
        o.Device = device;
        o.Attention = attention == "dense" ? AttentionMode.Dense : AttentionMode.FlexPrefill;
    });
    var kernel = builder.Build();

    try
    {
        var chat = await SampleConsole.LoadingAsync($"model {Path.GetFileName(model)} on {device}", () => kernel.GetRequiredService<IChatCompletionService>());
        // Chunks are sized with the model's own tokenizer, so "2048 tokens" means what the model sees.
        var tokenizer = HfTokenizer.Load(model);
        int documentTokens = tokenizer.Encode(document.Text).Count;
        AnsiConsole.MarkupLine($"[bold]Document[/] {Markup.Escape(document.Name)}: {document.Text.Length:N0} characters, {documentTokens:N0} tokens");
        var summarizer = new DocumentSummarizer(chat, s => tokenizer.Encode(s).Count);
        FlexPrefillPromptExecutionSettings Settings(IProgress<PrefillProgress> progress) =>
            new() { MaxTokens = maxTokens, Temperature = 0, Attention = attention, PrefillProgress = progress };

        var results = new List<SummaryResult>();
        try
        {
            results.Add(await SampleConsole.WithPrefillBarAsync("Long context", p => summarizer.SummarizeWholeAsync(document.Text, Settings(p), ct)));
        }
        catch (ContextLengthExceededException e)
        {
            // Exactly the case map-reduce exists for: report it and run the baseline anyway.
            AnsiConsole.MarkupLine($"[yellow]long context: the document does not fit the model in one call ({Markup.Escape(e.Message)})[/]");
        }
#pragma warning disable SKEXP0050 // TextChunker is experimental in SK 1.82; it is the baseline compared against.
        results.Add(await SampleConsole.WithPrefillBarAsync("Map-reduce", p => summarizer.SummarizeMapReduceAsync(document.Text, chunkTokens, Settings(p), ct)));
#pragma warning restore SKEXP0050

        foreach (var r in results)
        {
            AnsiConsole.Write(new Panel(Markup.Escape(r.Summary))
                .Header($"{r.Method}: {r.Chunks} chunk{(r.Chunks == 1 ? "" : "s")}, {r.Statistics.Calls} call{(r.Statistics.Calls == 1 ? "" : "s")}")
                .Expand());
        }
        var table = new Table().AddColumns("method", "calls", "prompt tokens", "output tokens", "prefill", "attention density", "wall time");
        foreach (var r in results)
        {
            var s = r.Statistics;
            table.AddRow(r.Method, $"{s.Calls}", $"{s.PromptTokens:N0}", $"{s.CompletionTokens:N0}",
                s.PrefillMilliseconds is { } ms ? $"{ms / 1000:N1} s" : "n/a",
                s.AttentionDensity is { } d ? $"{d:P0}" : "n/a", $"{s.Elapsed.TotalSeconds:N1} s");
        }
        AnsiConsole.Write(table);
        return 0;
    }
    catch (AnswerNotProducedException e)
    {
        return SampleConsole.Fail($"no summary: {e.Message}");
    }
    catch (ContextLengthExceededException e)
    {
        return SampleConsole.Fail($"a chunk does not fit the model: {e.Message}; lower --chunk-tokens");
    }
}
