using System.Text.Json;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Generation;
using FlexPrefill.SemanticKernel.Tests.TestDoubles;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace FlexPrefill.SemanticKernel.Tests;

public sealed class ChatClientTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_reply_carries_usage_metadata_and_the_finish_reason()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("Hello there."));
        var client = Scripted.Client(model);

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.System, "Be brief."), new ChatMessage(ChatRole.User, "Hi")], cancellationToken: Ct);

        Assert.Equal("Hello there.", response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal("scripted-model", response.ModelId);
        string prompt = model.Requests.Single().Prompt;
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", prompt);
        Assert.Equal(prompt.Length, response.Usage!.InputTokenCount);
        Assert.Equal(12, response.Usage.OutputTokenCount);
        Assert.Equal(prompt.Length + 12, response.Usage.TotalTokenCount);
        var meta = response.AdditionalProperties!;
        Assert.Equal(12.5, meta[FlexPrefillMetadataKeys.PrefillMilliseconds]);
        Assert.Equal(40.0, meta[FlexPrefillMetadataKeys.DecodeTokensPerSecond]);
        Assert.Equal(1.0, meta[FlexPrefillMetadataKeys.AttentionDensity]);
        Assert.Equal(0, meta[FlexPrefillMetadataKeys.CachedPromptTokens]);
        Assert.Equal("dense", meta[FlexPrefillMetadataKeys.AttentionBackend]);
    }

    [Fact]
    public async Task Streaming_yields_the_same_text_and_ends_with_usage()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("A streamed reply of some length."));
        var client = Scripted.Client(model);

        List<ChatResponseUpdate> updates = [];
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Hi")], cancellationToken: Ct)) updates.Add(u);

        Assert.True(updates.Count > 5);
        Assert.Equal("A streamed reply of some length.", string.Concat(updates.Select(u => u.Text)));
        var response = updates.ToChatResponse();
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(32, response.Usage!.OutputTokenCount);
        Assert.Equal(40.0, updates[^1].AdditionalProperties![FlexPrefillMetadataKeys.DecodeTokensPerSecond]);
    }

    [Fact]
    public async Task The_templates_stop_sequences_end_the_reply_and_max_tokens_gives_length()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("first turn<|im_end|>\n<|im_start|>user\nmore"));
        var client = Scripted.Client(model);

        var stopped = await client.GetResponseAsync("Hi", new ChatOptions { StopSequences = ["END"] }, Ct);
        var cut = await client.GetResponseAsync("Hi", new ChatOptions { MaxOutputTokens = 5 }, Ct);

        Assert.Equal("first turn", stopped.Text);
        Assert.Equal(["END", "<|im_end|>", "<|endoftext|>"], model.Requests[0].Options.StopSequences);
        Assert.Equal("first", cut.Text);
        Assert.Equal(ChatFinishReason.Length, cut.FinishReason);
    }

    [Fact]
    public async Task Instructions_join_the_leading_system_turn()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        var client = Scripted.Client(model);

        await client.GetResponseAsync([new ChatMessage(ChatRole.System, "Be brief."), new ChatMessage(ChatRole.User, "Hi")], new ChatOptions { Instructions = "Answer in French." }, Ct);
        await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Hi")], new ChatOptions { Instructions = "Answer in French." }, Ct);

        Assert.StartsWith("<|im_start|>system\nAnswer in French.\n\nBe brief.<|im_end|>\n<|im_start|>user\nHi", model.Requests[0].Prompt);
        Assert.StartsWith("<|im_start|>system\nAnswer in French.<|im_end|>\n<|im_start|>user\nHi", model.Requests[1].Prompt);
    }

    [Fact]
    public async Task Chat_options_reach_the_engine()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        var client = Scripted.Client(model);

        await client.GetResponseAsync("Hi", new ChatOptions
        {
            Temperature = 0.7f, TopP = 0.9f, TopK = 40, Seed = 7, MaxOutputTokens = 33,
            AdditionalProperties = new() { ["attention"] = "flexprefill", ["flexprefill_gamma"] = 0.9, ["flexprefill_tau"] = "0.2", ["flexprefill_min_budget"] = 512L },
        }, Ct);

        var o = model.Requests.Single().Options;
        Assert.Equal(0.7, o.Temperature, 5);
        Assert.Equal(0.9, o.TopP, 5);
        Assert.Equal(40, o.TopK);
        Assert.Equal(7, o.Seed);
        Assert.Equal(33, o.MaxTokens);
        Assert.Equal(AttentionMode.FlexPrefill, o.Attention);
        Assert.Equal(0.9, o.FlexPrefill.Gamma);
        Assert.Equal(0.2, o.FlexPrefill.Tau);
        Assert.Equal(512, o.FlexPrefill.MinBudget);
        Assert.True(o.ReusePrefix);
    }

    [Fact]
    public async Task Out_of_range_settings_are_refused_before_anything_is_queued()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        var client = Scripted.Client(model);

        var gamma = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync("Hi", new ChatOptions { AdditionalProperties = new() { ["flexprefill_gamma"] = 1.5 } }, Ct));
        var attention = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync("Hi", new ChatOptions { AdditionalProperties = new() { ["attention"] = "sparse" } }, Ct));

        Assert.Contains("gamma must be in (0, 1]", gamma.Message);
        Assert.Contains("'dense' or 'flexprefill'", attention.Message);
        Assert.Empty(model.Requests);
    }

    [Fact]
    public async Task Default_max_tokens_come_from_the_service_options_capped_to_the_context_left()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok")) { ContextLength = 100 };
        var client = Scripted.Client(model, options: new FlexPrefillServiceOptions { MaxOutputTokens = 64 });

        await client.GetResponseAsync("Hi", cancellationToken: Ct);

        var request = model.Requests.Single();
        Assert.Equal(100 - request.Tokens.Count, request.Options.MaxTokens);
    }

    [Fact]
    public async Task A_prompt_over_the_context_fails_with_both_numbers_before_queueing()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok")) { ContextLength = 200 };
        var client = Scripted.Client(model);

        var e = await Assert.ThrowsAsync<ContextLengthExceededException>(() => client.GetResponseAsync(new string('x', 150), new ChatOptions { MaxOutputTokens = 100 }, Ct));

        Assert.Equal(100, e.MaxTokens);
        Assert.Equal(200, e.ContextLength);
        Assert.True(e.PromptTokens > 150);
        Assert.Contains($"prompt has {e.PromptTokens:N0} tokens and 100 more were requested; the model's context is 200", e.Message);
        Assert.Empty(model.Requests);
        Assert.Equal(0, model.QueuedRequests);
    }

    [Fact]
    public async Task The_same_document_with_a_new_question_reuses_the_cached_prefix()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.Llama31(), Scripted.Says("An answer."));
        var client = Scripted.Client(model);
        string document = string.Join(' ', Enumerable.Repeat("Call me Ishmael.", 200));
        List<ChatMessage> Ask(string question) => [new(ChatRole.System, "Answer from the document."), new(ChatRole.User, $"{document}\n\nQuestion: {question}")];

        var first = await client.GetResponseAsync(Ask("Who narrates?"), new ChatOptions { ResponseFormat = ChatResponseFormat.Text }, Ct);
        var second = await client.GetResponseAsync(Ask("Where does the story start?"), cancellationToken: Ct);

        Assert.Equal(0, first.Usage!.CachedInputTokenCount);
        long cached = second.Usage!.CachedInputTokenCount!.Value;
        Assert.True(cached > document.Length, $"cached {cached} of a {document.Length}-character document");
        Assert.True(cached < second.Usage.InputTokenCount);
        Assert.Equal((int)cached, second.AdditionalProperties![FlexPrefillMetadataKeys.CachedPromptTokens]);
    }

    [Fact]
    public async Task Prefill_progress_reaches_the_callers_progress_and_the_log()
    {
        var logs = new ListLoggerProvider();
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        var client = Scripted.Client(model, logs, new FlexPrefillServiceOptions { LogPrefillProgressAboveTokens = 10 });
        List<PrefillProgress> seen = [];
        var progress = new SynchronousProgress(seen.Add);

        await client.GetResponseAsync("A long enough prompt", new ChatOptions { AdditionalProperties = new() { [FlexPrefillPromptExecutionSettings.PrefillProgressKey] = progress } }, Ct);

        Assert.Equal([1, 2, 3, 4], seen.Select(p => p.LayersDone));
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Information && e.Message.StartsWith("Prefill 100%", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancellation_during_prefill_or_decode_leaves_the_client_usable()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says(new string('z', 60))) { ChunkDelay = TimeSpan.FromMilliseconds(10), PrefillDelay = TimeSpan.FromMilliseconds(400) };
        var client = Scripted.Client(model);

        using (var duringPrefill = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync("Hi", cancellationToken: duringPrefill.Token));
        using (var duringDecode = new CancellationTokenSource())
        {
            int chunks = 0;
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                await foreach (var _ in client.GetStreamingResponseAsync("Hi", cancellationToken: duringDecode.Token))
                    if (++chunks == 3) duringDecode.Cancel();
            });
            Assert.Equal(3, chunks);
        }
        var after = await client.GetResponseAsync("Hi", cancellationToken: Ct);

        Assert.Equal(new string('z', 60), after.Text);
        Assert.Equal(0, model.QueuedRequests);
    }

    [Fact]
    public async Task Twenty_concurrent_requests_all_complete_one_at_a_time()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), r => "reply to " + r.Prompt[^30..^25]) { ChunkDelay = TimeSpan.FromMilliseconds(1), QueueCapacity = 32 };
        var client = Scripted.Client(model);

        var replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => client.GetResponseAsync($"question {i:D2}", cancellationToken: Ct)));

        Assert.Equal(20, replies.Length);
        Assert.All(replies, r => Assert.StartsWith("reply to", r.Text));
        Assert.Equal(20, model.Requests.Count);
        Assert.Equal(1, model.MaxRunning);
    }

    [Fact]
    public async Task A_full_queue_is_reported_clearly_and_the_queued_requests_still_complete()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("slow reply")) { ChunkDelay = TimeSpan.FromMilliseconds(20), QueueCapacity = 2 };
        var client = Scripted.Client(model);

        var running = client.GetResponseAsync("one", cancellationToken: Ct);
        while (model.Requests.Count == 0) await Task.Delay(1, Ct);
        var queued = new[] { client.GetResponseAsync("two", cancellationToken: Ct), client.GetResponseAsync("three", cancellationToken: Ct) };
        var full = await Assert.ThrowsAsync<InferenceQueueFullException>(() => client.GetResponseAsync("four", cancellationToken: Ct));

        Assert.Equal(2, full.Capacity);
        Assert.Contains("queue is full", full.Message);
        await running;
        Assert.All(await Task.WhenAll(queued), r => Assert.Equal("slow reply", r.Text));
    }

    [Fact]
    public async Task A_malformed_tool_call_comes_back_as_text_with_a_warning()
    {
        var logs = new ListLoggerProvider();
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \n</tool_call>"));
        var client = Scripted.Client(model, logs);
        var tool = AIFunctionFactory.Create((string city) => city, "get_weather");

        var response = await client.GetResponseAsync("Weather in Paris?", new ChatOptions { Tools = [tool] }, Ct);
        List<ChatResponseUpdate> updates = [];
        await foreach (var u in client.GetStreamingResponseAsync("Weather in Paris?", new ChatOptions { Tools = [tool] }, Ct)) updates.Add(u);

        Assert.StartsWith("<tool_call>", response.Text);
        Assert.DoesNotContain(response.Messages.SelectMany(m => m.Contents), c => c is FunctionCallContent);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(response.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("could not be parsed"));
    }

    [Fact]
    public async Task Arguments_that_are_not_a_json_object_come_back_as_text()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.Llama31(), Scripted.Says("{\"name\": \"get_weather\", \"parameters\": [1, 2]}"));
        var client = Scripted.Client(model);

        var response = await client.GetResponseAsync("Weather?", new ChatOptions { Tools = [AIFunctionFactory.Create((string city) => city, "get_weather")] }, Ct);

        Assert.Equal("{\"name\": \"get_weather\", \"parameters\": [1, 2]}", response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen")]
    public async Task Tool_calls_are_parsed_with_their_ids_and_tools_are_rendered_with_their_schema(string family)
    {
        string call = family == "llama"
            ? "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"
            : "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        var model = new ScriptedLanguageModel(family == "llama" ? RecordingTemplate.Llama31() : RecordingTemplate.Qwen(), Scripted.Says(call));
        var client = Scripted.Client(model);
        var options = new ChatOptions { Tools = [AIFunctionFactory.Create((string city) => city, "get_weather", "Gets the weather")] };

        var response = await client.GetResponseAsync("Weather in Paris?", options, Ct);
        List<ChatResponseUpdate> updates = [];
        await foreach (var u in client.GetStreamingResponseAsync("Weather in Paris?", options, Ct)) updates.Add(u);

        foreach (var contents in new[] { response.Messages.SelectMany(m => m.Contents).ToList(), updates.SelectMany(u => u.Contents).ToList() })
        {
            var fc = Assert.Single(contents.OfType<FunctionCallContent>());
            Assert.Equal("get_weather", fc.Name);
            Assert.StartsWith("call_", fc.CallId);
            Assert.Equal("Paris", ((JsonElement)fc.Arguments!["city"]!).GetString());
            Assert.DoesNotContain("<tool_call>", string.Concat(contents.OfType<TextContent>().Select(t => t.Text)));
        }
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        Assert.Equal(family == "llama" ? "" : "Let me check.", response.Text);
        Assert.Equal(family == "llama" ? "" : "Let me check.", string.Concat(updates.Select(u => u.Text)).Trim());
        Assert.Contains("\"city\"", model.Requests[0].Prompt);
        Assert.Contains("Gets the weather", model.Requests[0].Prompt);
    }

    [Fact]
    public async Task Several_calls_in_one_reply_are_all_returned_unless_only_one_is_allowed()
    {
        const string reply = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>";
        var model = new ScriptedLanguageModel(RecordingTemplate.Qwen(), Scripted.Says(reply));
        var client = Scripted.Client(model);
        var tool = AIFunctionFactory.Create((string city) => city, "get_weather");

        var both = await client.GetResponseAsync("Paris and Rome?", new ChatOptions { Tools = [tool] }, Ct);
        var one = await client.GetResponseAsync("Paris and Rome?", new ChatOptions { Tools = [tool], AllowMultipleToolCalls = false }, Ct);

        var calls = both.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
        Assert.Equal(["Paris", "Rome"], calls.Select(c => ((JsonElement)c.Arguments!["city"]!).GetString()));
        Assert.NotEqual(calls[0].CallId, calls[1].CallId);
        Assert.Single(one.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
    }

    [Fact]
    public async Task Tool_results_become_tool_turns_named_after_their_call()
    {
        var template = RecordingTemplate.ChatMl();
        var model = new ScriptedLanguageModel(template, Scripted.Says("It is sunny."));
        var client = Scripted.Client(model);
        List<ChatMessage> history =
        [
            new(ChatRole.User, "Weather in Paris?"),
            new(ChatRole.Assistant, [new FunctionCallContent("call_1", "get_weather", new Dictionary<string, object?> { ["city"] = "Paris" })]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "sunny, 22 degrees")]),
        ];

        await client.GetResponseAsync(history, new ChatOptions { Tools = [AIFunctionFactory.Create((string city) => city, "get_weather")] }, Ct);

        string prompt = model.Requests.Single().Prompt;
        Assert.Contains("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>", prompt);
        Assert.Contains("<tool_response>\nsunny, 22 degrees\n</tool_response>", prompt);
    }

    [Fact]
    public async Task Require_any_asks_for_a_tool_call_and_none_offers_no_tools()
    {
        var template = RecordingTemplate.Llama31();
        var model = new ScriptedLanguageModel(template, Scripted.Says("ok"));
        var client = Scripted.Client(model);
        var tool = AIFunctionFactory.Create((string city) => city, "get_weather");

        await client.GetResponseAsync("Weather?", new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.RequireAny }, Ct);
        Assert.Single(template.LastTools);
        await client.GetResponseAsync("Weather?", new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.None }, Ct);
        Assert.Empty(template.LastTools);

        Assert.Contains("Weather?\n\nAnswer by calling one of the provided tools.", model.Requests[0].Prompt);
        Assert.DoesNotContain("get_weather", model.Requests[1].Prompt);
    }

    [Fact]
    public async Task Json_response_format_asks_for_json_and_retries_once_with_the_parser_message()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), r => r.Prompt.Contains("not valid JSON") ? "```json\n{\"city\": \"Paris\"}\n```" : "Sure! Here it is: {city: Paris}");
        var client = Scripted.Client(model);

        var response = await client.GetResponseAsync("Give me the city as JSON.", new ChatOptions { ResponseFormat = ChatResponseFormat.Json }, Ct);

        Assert.Equal("{\"city\": \"Paris\"}", response.Text);
        Assert.Equal(2, model.Requests.Count);
        Assert.Contains("Give me the city as JSON.\n\nReply with one valid JSON value only", model.Requests[0].Prompt);
        Assert.True(model.Requests[1].CachedPromptTokens >= model.Requests[0].Tokens.Count, "the retry extends the first prompt");
    }

    [Fact]
    public async Task Json_that_stays_invalid_fails_with_a_clear_error()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("I cannot do JSON."));
        var client = Scripted.Client(model);
        var schema = JsonDocument.Parse("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}").RootElement;

        var e = await Assert.ThrowsAsync<JsonResponseFormatException>(() => client.GetResponseAsync("City?", new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(schema) }, Ct));
        var streamed = await Assert.ThrowsAsync<JsonResponseFormatException>(async () => { await foreach (var _ in client.GetStreamingResponseAsync("City?", new ChatOptions { ResponseFormat = ChatResponseFormat.Json }, Ct)) { } });

        Assert.Equal("I cannot do JSON.", e.Output);
        Assert.Contains("asked for JSON but the model's reply is not valid JSON", e.Message);
        Assert.Contains("\"city\":{\"type\":\"string\"}", model.Requests[0].Prompt);
        Assert.Equal("I cannot do JSON.", streamed.Output);
    }

    [Fact]
    public void The_client_reports_its_metadata_and_model()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("ok"));
        IChatClient client = Scripted.Client(model);

        var metadata = client.GetService<ChatClientMetadata>()!;

        Assert.Equal("flexprefill", metadata.ProviderName);
        Assert.Equal("scripted-model", metadata.DefaultModelId);
        Assert.Same(model, client.GetService<ILanguageModel>());
        Assert.Null(client.GetService<ChatClientMetadata>("some key"));
    }

    sealed class SynchronousProgress(Action<PrefillProgress> report) : IProgress<PrefillProgress>
    {
        public void Report(PrefillProgress value) => report(value);
    }
}
