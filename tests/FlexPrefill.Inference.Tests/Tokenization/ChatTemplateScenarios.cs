using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Inference.Tests.Tokenization;

/// <summary>The conversations every template test renders.</summary>
internal static class ChatTemplateScenarios
{
    public static readonly ToolDefinition Weather = new(
        "get_weather",
        "Current weather for a city.",
        """{"type":"object","properties":{"city":{"type":"string","description":"City name, e.g. Paris"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]}""");

    public static readonly ToolDefinition Time = new(
        "get_time",
        "Current time in a time zone.",
        """{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"]}""");

    public static readonly ChatTurn[] SystemUser =
    [
        new(ChatRole.System, "You are a terse assistant."),
        new(ChatRole.User, "What is 2+2?"),
    ];

    public static readonly ChatTurn[] MultiTurn =
    [
        new(ChatRole.System, "Be brief."),
        new(ChatRole.User, "Hi!"),
        new(ChatRole.Assistant, "Hello. How can I help?"),
        new(ChatRole.User, "Name a prime. "),
    ];

    public static readonly ChatTurn[] UserOnly = [new(ChatRole.User, "Hello")];

    public static readonly ChatTurn[] ToolsOffered =
    [
        new(ChatRole.System, "You help with travel."),
        new(ChatRole.User, "Weather in Paris?"),
    ];

    public static readonly ChatTurn[] ToolCallAndResult =
    [
        new(ChatRole.User, "Weather in Paris?"),
        new(ChatRole.Assistant, "") { ToolCalls = [new("call_1", "get_weather", """{"city":"Paris","unit":"celsius"}""")] },
        new(ChatRole.Tool, """{"temperature": 18, "sky": "clear"}""") { ToolCallId = "call_1", ToolName = "get_weather" },
    ];

    public static readonly ChatTurn[] ToolResultText =
    [
        new(ChatRole.User, "Weather in Paris?"),
        new(ChatRole.Assistant, "") { ToolCalls = [new("call_1", "get_weather", """{"city": "Paris"}""")] },
        new(ChatRole.Tool, "18 degrees and clear") { ToolCallId = "call_1", ToolName = "get_weather" },
    ];

    public static readonly ChatTurn[] ParallelCallsResults =
    [
        new(ChatRole.User, "Weather and time in Paris?"),
        new(ChatRole.Assistant, "Checking both.")
        {
            ToolCalls = [new("call_1", "get_weather", """{"city":"Paris"}"""), new("call_2", "get_time", """{"zone":"Europe/Paris"}""")],
        },
        new(ChatRole.Tool, """{"temperature": 18}""") { ToolCallId = "call_1", ToolName = "get_weather" },
        new(ChatRole.Tool, "14:05") { ToolCallId = "call_2", ToolName = "get_time" },
    ];
}
