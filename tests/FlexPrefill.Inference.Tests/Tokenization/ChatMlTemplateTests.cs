using FlexPrefill.Inference.Tokenization;
using static FlexPrefill.Inference.Tests.Tokenization.ChatTemplateScenarios;

namespace FlexPrefill.Inference.Tests.Tokenization;

public sealed class ChatMlTemplateTests
{
    private readonly ChatMlTemplate _qwen25 = new(ChatMlTemplate.QwenDefaultSystemPrompt);
    private readonly ChatMlTemplate _qwen3 = new();

    [Fact]
    public void System_and_user_render_as_Qwen_does()
    {
        Assert.Equal(ExpectedPrompts.Qwen25SystemUser, _qwen25.Render(SystemUser, []));
        Assert.Equal(ExpectedPrompts.Qwen3SystemUser, _qwen3.Render(SystemUser, []));
    }

    [Fact]
    public void Multi_turn_conversation_renders_as_Qwen_does()
    {
        Assert.Equal(ExpectedPrompts.Qwen25MultiTurn, _qwen25.Render(MultiTurn, []));
        Assert.Equal(ExpectedPrompts.Qwen3MultiTurn, _qwen3.Render(MultiTurn, []));
    }

    [Fact]
    public void The_default_system_prompt_is_used_only_when_configured()
    {
        Assert.Equal(ExpectedPrompts.Qwen25UserOnly, _qwen25.Render(UserOnly, []));
        Assert.Equal(ExpectedPrompts.Qwen3UserOnly, _qwen3.Render(UserOnly, []));
    }

    [Fact]
    public void Offered_tools_are_listed_in_the_system_turn()
    {
        Assert.Equal(ExpectedPrompts.Qwen25ToolsOffered, _qwen25.Render(ToolsOffered, [Weather, Time]));
        Assert.Equal(ExpectedPrompts.Qwen3ToolsOffered, _qwen3.Render(ToolsOffered, [Weather, Time]));
    }

    [Fact]
    public void Assistant_tool_call_and_result_render_as_Qwen_does()
    {
        Assert.Equal(ExpectedPrompts.Qwen25ToolCallAndResult, _qwen25.Render(ToolCallAndResult, [Weather]));
        Assert.Equal(ExpectedPrompts.Qwen3ToolCallAndResult, _qwen3.Render(ToolCallAndResult, [Weather]));
        Assert.Equal(ExpectedPrompts.Qwen25ToolResultText, _qwen25.Render(ToolResultText, [Weather]));
        Assert.Equal(ExpectedPrompts.Qwen3ToolResultText, _qwen3.Render(ToolResultText, [Weather]));
    }

    [Fact]
    public void Parallel_calls_and_consecutive_results_share_turns()
    {
        Assert.Equal(ExpectedPrompts.Qwen25ParallelCallsResults, _qwen25.Render(ParallelCallsResults, [Weather, Time]));
        Assert.Equal(ExpectedPrompts.Qwen3ParallelCallsResults, _qwen3.Render(ParallelCallsResults, [Weather, Time]));
    }

    [Fact]
    public void Tool_call_blocks_are_parsed_and_the_text_around_them_kept()
    {
        var parsed = _qwen25.ParseReply("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>");
        Assert.Null(parsed.Error);
        Assert.Equal("Let me check.", parsed.Content);
        var call = Assert.Single(parsed.ToolCalls);
        Assert.Equal(("get_weather", "{\"city\": \"Paris\"}"), (call.Name, call.ArgumentsJson));
        Assert.StartsWith("call_", call.Id);
    }

    [Fact]
    public void Several_tool_calls_are_parsed_in_order()
    {
        var parsed = _qwen25.ParseReply(
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n" +
            "<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{\\\"zone\\\": \\\"UTC\\\"}\"}\n</tool_call>");
        Assert.Null(parsed.Error);
        Assert.Equal("", parsed.Content);
        Assert.Equal(["get_weather", "get_time"], parsed.ToolCalls.Select(c => c.Name));
        Assert.Equal("{\"zone\": \"UTC\"}", parsed.ToolCalls[1].ArgumentsJson);
        Assert.NotEqual(parsed.ToolCalls[0].Id, parsed.ToolCalls[1].Id);
    }

    [Fact]
    public void A_call_cut_off_before_its_closing_tag_still_parses_when_its_json_is_complete()
    {
        var parsed = _qwen25.ParseReply("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n");
        Assert.Equal("get_time", Assert.Single(parsed.ToolCalls).Name);
    }

    [Theory]
    [InlineData("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>")]
    [InlineData("<tool_call>\n{\"arguments\": {}}\n</tool_call>")]
    [InlineData("<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call><tool_call>not json</tool_call>")]
    [InlineData("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}} trailing\n</tool_call>")]
    public void Malformed_tool_calls_give_an_error_and_the_text_as_content(string reply)
    {
        var parsed = _qwen25.ParseReply(reply);
        Assert.Empty(parsed.ToolCalls);
        Assert.NotNull(parsed.Error);
        Assert.Equal(reply, parsed.Content);
    }

    [Fact]
    public void Replies_without_tool_calls_are_plain_content()
    {
        var parsed = _qwen3.ParseReply("Paris is sunny.<|im_end|>");
        Assert.Equal(("Paris is sunny.", 0, (string?)null), (parsed.Content, parsed.ToolCalls.Count, parsed.Error));
    }
}
