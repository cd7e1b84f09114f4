using FlexPrefill.Samples;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace HostedWorker.Tests;

public sealed class DocumentQaTests : IDisposable
{
    readonly WorkerFixture _f = new();
    static CancellationToken Ct => TestContext.Current.CancellationToken;
    string StoryPath => Path.Combine(_f.Documents, "story.txt");

    [Fact]
    public void Search_returns_the_best_matching_paragraph_with_its_line_and_offset()
    {
        var doc = LongDocument.Load(StoryPath);
        var best = doc.Search("special magic number harpoon").First();
        Assert.Equal("The special magic number for harpoon is 4817263.", best.Text);
        Assert.Equal(5, best.Line);
        Assert.Equal(doc.Text.IndexOf("The special", StringComparison.Ordinal), best.CharOffset);
        Assert.Equal(best.Text, doc.Text.Substring(best.CharOffset, best.Text.Length));
    }

    [Fact]
    public void The_citation_is_the_sentence_holding_the_number_in_the_answer()
    {
        var doc = LongDocument.FromText("t", "First line.\nA long sentence that runs\nover two lines, says 4817263 and ends. Another one.\n");
        var cited = DocumentQuestionAnswerer.FindCitation(doc, "The number is 4817263.");
        Assert.NotNull(cited);
        Assert.Equal("A long sentence that runs\nover two lines, says 4817263 and ends.", cited.Text);
        Assert.Equal(2, cited.Line);
        Assert.Null(DocumentQuestionAnswerer.FindCitation(doc, "9999999"));
        Assert.Null(DocumentQuestionAnswerer.FindCitation(doc, "It is 81726.")); // only part of a number in the text
    }

    [Fact]
    public async Task In_context_the_whole_document_precedes_the_question_and_the_answer_is_cited()
    {
        var chat = FakeChatService.Replying(_ => "4817263");
        var doc = LongDocument.Load(StoryPath);
        var result = await new DocumentQuestionAnswerer(chat).AnswerInContextAsync(doc, "What is the special magic number for harpoon?", cancellationToken: Ct);

        Assert.Equal("4817263", result.Answer);
        Assert.Equal(5, result.Citation!.Line);
        Assert.Equal(1000, result.Statistics.PromptTokens);
        Assert.Equal(12.5, result.Statistics.PrefillMilliseconds);
        Assert.Equal(0.25, result.Statistics.AttentionDensity);
        string prompt = chat.Calls.Single()[^1].Content!;
        Assert.Equal(doc.Unwrapped + "\n\nWhat is the special magic number for harpoon?", prompt);
    }

    [Fact]
    public void Prompts_carry_paragraphs_unwrapped_while_citations_keep_the_file_lines()
    {
        var doc = LongDocument.FromText("t", "Call me  Ishmael. Some years\nago, never mind\n\n\nhow long.\nThe number is 4817263.\n");
        Assert.Equal("Call me Ishmael. Some years ago, never mind\n\nhow long. The number is 4817263.", doc.Unwrapped);
        var cited = DocumentQuestionAnswerer.FindCitation(doc, "4817263");
        Assert.Equal(6, cited!.Line); // the file's sixth line, though the prompt has two
    }

    [Fact]
    public async Task An_empty_answer_is_reported_as_not_produced()
    {
        var chat = FakeChatService.Replying(_ => "  ");
        var e = await Assert.ThrowsAsync<AnswerNotProducedException>(() =>
            new DocumentQuestionAnswerer(chat).AnswerInContextAsync(LongDocument.Load(StoryPath), "q?", cancellationToken: Ct));
        Assert.Contains("empty answer", e.Message);
    }

    [Fact]
    public async Task The_agent_searches_through_the_plugin_then_answers_citing_the_passage_it_read()
    {
        var plugin = new DocumentPlugin(new DocumentPathPolicy([_f.Documents]));
        var kernel = new Kernel();
        kernel.Plugins.AddFromObject(plugin, "document");
        PromptExecutionSettings? seenSettings = null;
        var chat = new FakeChatService((history, _) =>
        {
            var last = history[^1];
            if (last.Role == AuthorRole.User)
            {
                // Step 1: the model asks for the document and a search.
                return Task.FromResult(new ChatMessageContent(AuthorRole.Assistant, [
                    new FunctionCallContent("load_document", "document", "call-1", new KernelArguments { ["path"] = "story.txt" }),
                    new FunctionCallContent("search_document", "document", "call-2", new KernelArguments { ["query"] = "magic number for harpoon" }),
                ]));
            }
            // Step 2: it reads the tool results and answers from them.
            var results = history.SelectMany(m => m.Items.OfType<FunctionResultContent>()).ToArray();
            Assert.Equal(2, results.Length);
            Assert.Contains("loaded 'story.txt'", results[0].Result?.ToString());
            string found = results[1].Result?.ToString() ?? "";
            return Task.FromResult(FakeChatService.Message(found.Contains("4817263") ? "It is 4817263." : "not found"));
        });
        var qa = new DocumentQuestionAnswerer(new SettingsRecorder(chat, s => seenSettings = s));

        var result = await qa.AnswerWithAgentAsync(kernel, plugin, "What is the special magic number for harpoon?", cancellationToken: Ct);

        Assert.Equal("It is 4817263.", result.Answer);
        Assert.Equal("The special magic number for harpoon is 4817263.", result.Citation!.Text);
        Assert.Contains(result.PassagesRead, p => p.Line == 5);
        Assert.Equal(2, result.Statistics.Calls);
        Assert.IsType<AutoFunctionChoiceBehavior>(seenSettings!.FunctionChoiceBehavior);
    }

    [Fact]
    public async Task A_failing_tool_call_is_shown_to_the_model_as_an_error_result()
    {
        var plugin = new DocumentPlugin(new DocumentPathPolicy([_f.Documents]));
        var kernel = new Kernel();
        kernel.Plugins.AddFromObject(plugin, "document");
        var chat = new FakeChatService((history, _) => Task.FromResult(history[^1].Role == AuthorRole.User
            ? new ChatMessageContent(AuthorRole.Assistant, [new FunctionCallContent("search_document", "document", "c1", new KernelArguments { ["query"] = "x" })])
            : FakeChatService.Message(history[^1].Items.OfType<FunctionResultContent>().Single().Result?.ToString() ?? "")));
        var result = await new DocumentQuestionAnswerer(chat).AnswerWithAgentAsync(kernel, plugin, "q?", cancellationToken: Ct);
        Assert.Contains("no document is loaded", result.Answer);
    }

    [Fact]
    public async Task The_agent_gives_up_after_the_step_limit()
    {
        var plugin = new DocumentPlugin(new DocumentPathPolicy([_f.Documents]));
        plugin.Use(LongDocument.Load(StoryPath));
        var kernel = new Kernel();
        kernel.Plugins.AddFromObject(plugin, "document");
        var chat = new FakeChatService((_, _) => Task.FromResult(new ChatMessageContent(AuthorRole.Assistant,
            [new FunctionCallContent("read_lines", "document", "c", new KernelArguments { ["firstLine"] = 1 })])));
        var e = await Assert.ThrowsAsync<AnswerNotProducedException>(() =>
            new DocumentQuestionAnswerer(chat).AnswerWithAgentAsync(kernel, plugin, "q?", maxSteps: 3, cancellationToken: Ct));
        Assert.Contains("3 model calls", e.Message);
        Assert.Equal(3, chat.Calls.Count);
    }

    [Fact]
    public void The_plugin_refuses_to_load_a_file_outside_its_folders()
    {
        File.WriteAllText(Path.Combine(_f.Root, "secret.txt"), "secret");
        var plugin = new DocumentPlugin(new DocumentPathPolicy([_f.Documents]));
        Assert.StartsWith("error: document path '../secret.txt' is outside", plugin.LoadDocument("../secret.txt"));
        Assert.Null(plugin.Document);
    }

    [Fact]
    public async Task Map_reduce_summarises_every_chunk_then_the_summaries()
    {
        string text = string.Join("\n\n", Enumerable.Range(1, 12).Select(i => $"Paragraph {i} " + string.Join(' ', Enumerable.Repeat("word", 30)) + "."));
        int n = 0;
        var chat = FakeChatService.Replying(p => p.StartsWith("Paragraph") ? $"S{++n}." : "All paragraphs.");
        static int Words(string s) => s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

        var result = await new DocumentSummarizer(chat, Words).SummarizeMapReduceAsync(text, chunkTokens: 80, cancellationToken: Ct);

        Assert.True(result.Chunks >= 4, $"{result.Chunks} chunks");
        Assert.Equal(result.Chunks + 1, chat.Calls.Count);
        Assert.Equal("All paragraphs.", result.Summary);
        Assert.All(chat.Calls.Take(result.Chunks), h => Assert.True(Words(h[^1].Content!) <= 80 + 10));
        Assert.Equal(result.Chunks + 1, result.Statistics.Calls);
    }

    [Fact]
    public async Task Long_context_summarises_in_one_call()
    {
        var chat = FakeChatService.Replying(_ => "Short.");
        var result = await new DocumentSummarizer(chat, s => s.Length).SummarizeWholeAsync("Some text.", cancellationToken: Ct);
        Assert.Equal("Short.", result.Summary);
        Assert.Single(chat.Calls);
        Assert.EndsWith(DocumentSummarizer.Instruction, chat.Calls.Single()[^1].Content);
    }

    public void Dispose() => _f.Dispose();

    /// <summary>Passes calls through and shows the test the settings the agent sent.</summary>
    sealed class SettingsRecorder(IChatCompletionService inner, Action<PromptExecutionSettings?> seen) : IChatCompletionService
    {
        public IReadOnlyDictionary<string, object?> Attributes => inner.Attributes;

        public Task<IReadOnlyList<ChatMessageContent>> GetChatMessageContentsAsync(ChatHistory chatHistory, PromptExecutionSettings? executionSettings = null, Kernel? kernel = null, CancellationToken cancellationToken = default)
        {
            seen(executionSettings);
            return inner.GetChatMessageContentsAsync(chatHistory, executionSettings, kernel, cancellationToken);
        }

        public IAsyncEnumerable<StreamingChatMessageContent> GetStreamingChatMessageContentsAsync(ChatHistory chatHistory, PromptExecutionSettings? executionSettings = null, Kernel? kernel = null, CancellationToken cancellationToken = default) =>
            inner.GetStreamingChatMessageContentsAsync(chatHistory, executionSettings, kernel, cancellationToken);
    }
}
