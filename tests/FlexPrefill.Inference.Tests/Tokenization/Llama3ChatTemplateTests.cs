using FlexPrefill.Inference.Tokenization;
using static FlexPrefill.Inference.Tests.Tokenization.ChatTemplateScenarios;

namespace FlexPrefill.Inference.Tests.Tokenization;

public sealed class Llama3ChatTemplateTests
{
    private readonly Llama3ChatTemplate _template = new();

    [Fact]
    public void System_and_user_render_as_Llama_3_1_does() =>
        Assert.Equal(ExpectedPrompts.Llama31SystemUser, _template.Render(SystemUser, []));

    [Fact]
    public void Multi_turn_conversation_renders_as_Llama_3_1_does() =>
        Assert.Equal(ExpectedPrompts.Llama31MultiTurn, _template.Render(MultiTurn, []));

    [Fact]
    public void A_conversation_without_system_prompt_still_opens_with_the_date_header() =>
        Assert.Equal(ExpectedPrompts.Llama31UserOnly, _template.Render(UserOnly, []));

    [Fact]
    public void Offered_tools_go_into_the_first_user_turn_as_indented_json() =>
        Assert.Equal(ExpectedPrompts.Llama31ToolsOffered, _template.Render(ToolsOffered, [Weather, Time]));

    [Fact]
    public void Assistant_tool_call_and_json_result_render_as_Llama_3_1_does() =>
        Assert.Equal(ExpectedPrompts.Llama31ToolCallAndResult, _template.Render(ToolCallAndResult, [Weather]));

    [Fact]
    public void A_plain_text_tool_result_is_written_as_a_json_string() =>
        Assert.Equal(ExpectedPrompts.Llama31ToolResultText, _template.Render(ToolResultText, [Weather]));

    [Fact]
    public void Llama_3_0_options_render_the_plain_template()
    {
        var plain = new Llama3ChatTemplate(new Llama3TemplateOptions { DateHeader = false });
        Assert.Equal(ExpectedPrompts.Llama30SystemUser, plain.Render(SystemUser, []));
        Assert.Equal(ExpectedPrompts.Llama30MultiTurn, plain.Render(MultiTurn, []));
        Assert.Equal(ExpectedPrompts.Llama30UserOnly, plain.Render(UserOnly, []));
    }

    [Fact]
    public void Tools_can_go_into_the_system_turn()
    {
        var template = new Llama3ChatTemplate(new Llama3TemplateOptions { ToolsInUserMessage = false, TodayDate = "01 Dec 2026" });
        string prompt = template.Render(UserOnly, [Time]);
        Assert.StartsWith(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\n" +
            "Today Date: 01 Dec 2026\n\nYou have access to the following functions. To call a function, please respond with JSON for a function call." +
            "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    \"type\": \"function\",",
            prompt);
        Assert.EndsWith("}\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", prompt);
    }

    [Fact]
    public void Several_calls_in_one_turn_are_joined_by_semicolons_and_parse_back()
    {
        string prompt = _template.Render(ParallelCallsResults, [Weather, Time], addGenerationPrompt: false);
        const string calls = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}; {\"name\": \"get_time\", \"parameters\": {\"zone\": \"Europe/Paris\"}}";
        Assert.Contains("<|start_header_id|>assistant<|end_header_id|>\n\n" + calls + "<|eot_id|>", prompt);
        Assert.EndsWith("<|start_header_id|>ipython<|end_header_id|>\n\n{\"temperature\": 18}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"14:05\"<|eot_id|>", prompt);

        var parsed = _template.ParseReply(calls);
        Assert.Null(parsed.Error);
        Assert.Equal(["get_weather", "get_time"], parsed.ToolCalls.Select(c => c.Name));
    }

    [Fact]
    public void A_json_tool_call_reply_is_parsed_with_a_generated_id()
    {
        var parsed = _template.ParseReply("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}<|eot_id|>");
        Assert.Null(parsed.Error);
        Assert.Equal("", parsed.Content);
        var call = Assert.Single(parsed.ToolCalls);
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("{\"city\": \"Paris\", \"unit\": \"celsius\"}", call.ArgumentsJson);
        Assert.StartsWith("call_", call.Id);
    }

    [Fact]
    public void Calls_after_the_python_tag_and_with_arguments_key_are_parsed()
    {
        var first = _template.ParseReply("<|python_tag|>{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}<|eom_id|>");
        var second = _template.ParseReply("<|python_tag|>{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}");
        Assert.Equal("get_time", Assert.Single(first.ToolCalls).Name);
        Assert.NotEqual(first.ToolCalls[0].Id, second.ToolCalls[0].Id);
    }

    [Fact]
    public void Plain_text_replies_have_no_tool_calls()
    {
        var parsed = _template.ParseReply("The weather in Paris is {mild}.<|eot_id|>");
        Assert.Equal("The weather in Paris is {mild}.", parsed.Content);
        Assert.Empty(parsed.ToolCalls);
        Assert.Null(parsed.Error);
    }

    [Theory]
    [InlineData("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"")]
    [InlineData("{\"name\": \"get_weather\", \"parameters\": [1, 2]}")]
    [InlineData("<|python_tag|>get_weather(city='Paris')")]
    [InlineData("{\"name\": 5, \"parameters\": {}}")]
    public void Malformed_tool_calls_give_an_error_and_the_text_as_content(string reply)
    {
        var parsed = _template.ParseReply(reply);
        Assert.Empty(parsed.ToolCalls);
        Assert.NotNull(parsed.Error);
        Assert.Equal(reply, parsed.Content);
    }
}
