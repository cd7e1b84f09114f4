// Long-document question answering on a local model through Semantic Kernel, with FlexPrefill prefill.
// No arguments: the bundled default model, a Moby-Dick excerpt with one inserted fact, and the question about it.
using System.CommandLine;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Samples;
using FlexPrefill.SemanticKernel;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Spectre.Console;

var modelOption = new Option<string?>("--model") { Description = $"Hugging Face model folder (default: {SampleFiles.DefaultModel} of this repository)" };
var documentOption = new Option<string?>("--document") { Description = $"Text file to ask about (default: {SampleFiles.DefaultDocument})" };
var questionOption = new Option<string?>("--question") { Description = "The question (required with --document)" };
var deviceOption = new Option<string>("--device") { Description = "cpu, cuda or cuda:N (cuda needs a CUDA libtorch build, see the README)", DefaultValueFactory = _ => "cpu" };
var attentionOption = new Option<string>("--attention")
{
    Description = "Prefill attention; auto = flexprefill on CUDA, dense on the CPU (where the managed FlexPrefill reference is slower than dense)",
    DefaultValueFactory = _ => "auto",
};
attentionOption.AcceptOnlyFromAmong("auto", "dense", "flexprefill");
var agentOption = new Option<bool>("--agent") { Description = "Let the model read the document through the DocumentPlugin's functions (needs a model that calls tools)" };
var maxTokensOption = new Option<int>("--max-tokens") { Description = "Most tokens in the answer", DefaultValueFactory = _ => 32 };

var root = new RootCommand("Answers a question about a long document, citing the passage that holds the answer.")
{
    modelOption, documentOption, questionOption, deviceOption, attentionOption, agentOption, maxTokensOption,
};
root.SetAction((parse, ct) => SampleConsole.RunAsync(() => RunAsync(
    parse.GetValue(modelOption), parse.GetValue(documentOption), parse.GetValue(questionOption), parse.GetValue(deviceOption)!,
    parse.GetValue(attentionOption)!, parse.GetValue(agentOption), parse.GetValue(maxTokensOption), ct)));
return await root.Parse(args).InvokeAsync();

static async Task<int> RunAsync(string? modelArg, string? documentArg, string? questionArg, string device, string attention, bool agent, int maxTokens, CancellationToken ct)
{
    string? model = modelArg ?? SampleFiles.Find(SampleFiles.DefaultModel);
    if (model is null || !File.Exists(Path.Combine(model, "config.json")))
        return SampleConsole.Fail($"no model folder with a config.json at '{modelArg ?? SampleFiles.DefaultModel}'; pass --model DIR", 2);
    if (documentArg is not null && questionArg is null)
        return SampleConsole.Fail("--document needs --question", 2);
    string? documentPath = documentArg ?? SampleFiles.Find(SampleFiles.DefaultDocument);
    if (documentPath is null || !File.Exists(documentPath))
        return SampleConsole.Fail($"document '{documentArg ?? SampleFiles.DefaultDocument}' not found", 2);
    string question = questionArg ?? SampleFiles.DefaultQuestion;
    // Only the bundled document + question has a known answer to check against.
    string? expected = documentArg is null && questionArg is null ? SampleFiles.DefaultAnswer : null;

    var document = LongDocument.Load(documentPath);
    AnsiConsole.MarkupLine($"[bold]Document[/] {Markup.Escape(document.Name)}: {document.Text.Length:N0} characters, {document.LineCount:N0} lines");
    AnsiConsole.MarkupLine($"[bold]Question[/] {Markup.Escape(question)}");

    if (attention == "auto") attention = device.StartsWith("cuda", StringComparison.Ordinal) ? "flexprefill" : "dense";
    var builder = Kernel.CreateBuilder();
    builder.AddFlexPrefillChatCompletion(o =>
    {
        o.ModelPath = Path.GetFullPath(model);
        o.Device = device;
        o.Attention = attention == "dense" ? AttentionMode.Dense : AttentionMode.FlexPrefill;
    });
    var kernel = builder.Build();

    try
    {
        var chat = await SampleConsole.LoadingAsync($"model {Path.GetFileName(Path.GetFullPath(model))} on {device}", () => kernel.GetRequiredService<IChatCompletionService>());
        AnsiConsole.MarkupLine($"[bold]Model[/]    {Markup.Escape(Path.GetFileName(Path.GetFullPath(model)))} on {Markup.Escape(device)}, {attention} prefill");
        var settings = new FlexPrefillPromptExecutionSettings { MaxTokens = maxTokens, Temperature = 0, Attention = attention };
        var qa = new DocumentQuestionAnswerer(chat);

        QaResult result;
        if (agent)
        {
            var plugin = new DocumentPlugin(new DocumentPathPolicy([Path.GetDirectoryName(Path.GetFullPath(documentPath))!]));
            plugin.Use(document);
            kernel.Plugins.AddFromObject(plugin, "document");
            result = await SampleConsole.WithPrefillBarAsync("Agent", progress =>
            {
                settings.PrefillProgress = progress;
                return qa.AnswerWithAgentAsync(kernel, plugin, question, settings, cancellationToken: ct);
            });
        }
        else
        {
            result = await SampleConsole.WithPrefillBarAsync("Document in context", progress =>
            {
                settings.PrefillProgress = progress;
                return qa.AnswerInContextAsync(document, question, settings, ct);
            });
        }

        AnsiConsole.MarkupLine($"[bold]Answer[/]   [green]{Markup.Escape(result.Answer)}[/]");
        if (result.Citation is { } cited)
            AnsiConsole.MarkupLine($"[bold]Cited[/]    {Markup.Escape(cited.Citation)}: [italic]\"{Markup.Escape(cited.Text.ReplaceLineEndings(" "))}\"[/]");
        else
            AnsiConsole.MarkupLine("[yellow]Cited[/]    no sentence of the document contains this answer");
        foreach (var read in result.PassagesRead)
            AnsiConsole.MarkupLine($"[grey]read     {Markup.Escape(read.Citation)}[/]");
        AnsiConsole.MarkupLine($"[grey]{Markup.Escape(result.Statistics.ToString())}[/]");

        if (expected is not null && !result.Answer.Contains(expected, StringComparison.Ordinal))
            return SampleConsole.Fail($"the answer does not contain {expected}, the number the bundled document holds");
        return 0;
    }
    catch (AnswerNotProducedException e)
    {
        return SampleConsole.Fail($"no answer: {e.Message}");
    }
    catch (ContextLengthExceededException e)
    {
        return SampleConsole.Fail($"the document does not fit the model: {e.Message}");
    }
}
