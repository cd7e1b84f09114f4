using FlexPrefill.Inference.Tokenization;
using static FlexPrefill.Inference.Tests.Tokenization.ChatTemplateScenarios;

namespace FlexPrefill.Inference.Tests.Tokenization;

/// <summary>Expected prompts as Mistral-7B-Instruct-v0.3's Hugging Face template renders them (checked with jinja2).</summary>
public sealed class MistralChatTemplateTests
{
    private readonly MistralChatTemplate _template = new();

    [Fact]
    public void The_system_prompt_joins_the_last_user_turn()
    {
        ChatTurn[] turns =
        [
            new(ChatRole.System, "Be brief."),
            new(ChatRole.User, "Hi!"),
            new(ChatRole.Assistant, "Hello. How can I help? "),
            new(ChatRole.User, "Name a prime."),
        ];
        Assert.Equal("<s>[INST] Hi![/INST] Hello. How can I help?</s>[INST] Be brief.\n\nName a prime.[/INST]", _template.Render(turns, []));
    }

    [Fact]
    public void Tools_calls_and_results_render_as_Mistral_does()
    {
        ChatTurn[] turns =
        [
            new(ChatRole.System, "You help with travel."),
            new(ChatRole.User, "Weather in Paris?"),
            new(ChatRole.Assistant, "") { ToolCalls = [new("abc123XYZ", "get_weather", """{"city":"Paris"}""")] },
            new(ChatRole.Tool, """{"temperature": 18}""") { ToolCallId = "abc123XYZ", ToolName = "get_weather" },
        ];
        Assert.Equal(
            "<s>[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather for a city.\", " +
            "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name, e.g. Paris\"}, " +
            "\"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}}, \"required\": [\"city\"]}}}][/AVAILABLE_TOOLS]" +
            "[INST] You help with travel.\n\nWeather in Paris?[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, " +
            "\"id\": \"abc123XYZ\"}]</s>[TOOL_RESULTS] {\"content\": {\"temperature\": 18}, \"call_id\": \"abc123XYZ\"}[/TOOL_RESULTS]",
            _template.Render(turns, [Weather]));
    }

    [Fact]
    public void Tool_calls_are_parsed_keeping_their_ids_or_getting_nine_character_ones()
    {
        var parsed = _template.ParseReply("[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abc123XYZ\"}, " +
            "{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}]</s>");
        Assert.Null(parsed.Error);
        Assert.Equal(["get_weather", "get_time"], parsed.ToolCalls.Select(c => c.Name));
        Assert.Equal("abc123XYZ", parsed.ToolCalls[0].Id);
        Assert.Equal(9, parsed.ToolCalls[1].Id.Length);
    }

    [Theory]
    [InlineData("[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": ")]
    [InlineData("[TOOL_CALLS] {\"name\": \"get_weather\"}")]
    public void Malformed_tool_calls_give_an_error_and_the_text_as_content(string reply)
    {
        var parsed = _template.ParseReply(reply);
        Assert.Empty(parsed.ToolCalls);
        Assert.NotNull(parsed.Error);
        Assert.Equal(reply, parsed.Content);
    }
}
