using System.Text.Json;
using FlexPrefill.Inference.Tokenization;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using AIChatRole = Microsoft.Extensions.AI.ChatRole;
using TurnRole = FlexPrefill.Inference.Tokenization.ChatRole;

namespace FlexPrefill.SemanticKernel;

/// <summary>Between Microsoft.Extensions.AI messages and the engine's chat turns, both directions.</summary>
internal static class ChatConversion
{
    // Compact: the rendered arguments and results are prompt tokens, and models emit compact JSON themselves.
    static readonly JsonSerializerOptions s_json = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };

    /// <summary>
    /// Messages to turns. Tool results become one <see cref="TurnRole.Tool"/> turn each, named after the call they
    /// answer. Content a text model cannot read (images, audio) is skipped with a warning.
    /// </summary>
    public static List<ChatTurn> ToTurns(IEnumerable<ChatMessage> messages, string? instructions, ILogger logger)
    {
        List<ChatTurn> turns = [];

        Dictionary<string, string> callNames = [];
        foreach (var message in messages)
        {
            List<ToolCall> calls = [];
            List<ChatTurn> results = [];
            var text = new System.Text.StringBuilder();
            foreach (var content in message.Contents)
            {
                switch (content)
                {
                    case TextContent t:
                        text.Append(t.Text);
                        break;
                    case FunctionCallContent call:
                        callNames[call.CallId] = call.Name;
                        // A call this connector parsed keeps the model's own text, so the re-rendered turn matches what it wrote.
                        calls.Add(call.RawRepresentation as ToolCall ?? new ToolCall(call.CallId, call.Name, ArgumentsToJson(call.Arguments)));
                        break;
                    case FunctionResultContent result:
                        results.Add(new ChatTurn(TurnRole.Tool, ResultToText(result))
                        {
                            ToolCallId = result.CallId,
                            ToolName = callNames.GetValueOrDefault(result.CallId),
                        });
                        break;
                    case TextReasoningContent or UsageContent:
                        break; // not part of what the model reads back
                    default:
                        logger.LogWarning("FlexPrefill models read text only; skipping a {ContentType} in a {Role} message", content.GetType().Name, message.Role);
                        break;
                }
            }

            if (results.Count > 0)
            {
                turns.AddRange(results);
                if (text.Length > 0) turns.Add(new ChatTurn(TurnRole.User, text.ToString()));
                continue;
            }

            var role = ToTurnRole(message.Role);
            if (role == TurnRole.Assistant)
                turns.Add(new ChatTurn(role, text.ToString()) { ToolCalls = calls });
            else
                turns.Add(new ChatTurn(role, text.ToString()));
        }

        // Templates read one leading system turn: the options' instructions join it rather than precede it.
        if (!string.IsNullOrEmpty(instructions))
        {
            if (turns.Count > 0 && turns[0].Role == TurnRole.System)
                turns[0] = turns[0] with { Content = instructions + "\n\n" + turns[0].Content };
            else
                turns.Insert(0, new ChatTurn(TurnRole.System, instructions));
        }
        return turns;
    }

    static TurnRole ToTurnRole(AIChatRole role)
    {
        if (role == AIChatRole.System || role.Value == "developer") return TurnRole.System;
        if (role == AIChatRole.Assistant) return TurnRole.Assistant;
        if (role == AIChatRole.Tool) return TurnRole.Tool;
        return TurnRole.User;
    }

    /// <summary>Tools the model may call, in the order given (a stable order keeps the rendered prefix stable).</summary>
    public static List<ToolDefinition> ToToolDefinitions(ChatOptions? options)
    {
        if (options?.Tools is not { Count: > 0 } tools || options.ToolMode is NoneChatToolMode)
            return [];
        string? required = (options.ToolMode as RequiredChatToolMode)?.RequiredFunctionName;
        List<ToolDefinition> definitions = [];
        foreach (var tool in tools)
        {
            if (tool is AIFunctionDeclaration f && (required is null || f.Name == required))
                definitions.Add(new ToolDefinition(f.Name, f.Description, f.JsonSchema.GetRawText()));
        }
        return definitions;
    }

    static string ArgumentsToJson(IDictionary<string, object?>? arguments) =>
        arguments is null ? "{}" : JsonSerializer.Serialize(arguments, s_json.GetTypeInfo(typeof(IDictionary<string, object?>)));

    static string ResultToText(FunctionResultContent result) => result.Result switch
    {
        null => result.Exception is { } e ? $"Error: {e.Message}" : "",
        string s => s,
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString() ?? "",
        JsonElement e => e.GetRawText(),
        var value => JsonSerializer.Serialize(value, s_json.GetTypeInfo(value.GetType())),
    };

    /// <summary>
    /// Tool calls to <see cref="FunctionCallContent"/>; null when an arguments string is not a JSON object (then the
    /// reply is returned as text, see the caller).
    /// </summary>
    public static List<FunctionCallContent>? ToFunctionCalls(IReadOnlyList<ToolCall> calls, out string? error)
    {
        List<FunctionCallContent> contents = [];
        foreach (var call in calls)
        {
            Dictionary<string, object?> arguments;
            try
            {
                using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(call.ArgumentsJson) ? "{}" : call.ArgumentsJson);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    error = $"the arguments of '{call.Name}' are a JSON {doc.RootElement.ValueKind}, not an object";
                    return null;
                }
                arguments = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
            }
            catch (JsonException e)
            {
                error = $"the arguments of '{call.Name}' are not JSON: {e.Message}";
                return null;
            }
            string id = string.IsNullOrEmpty(call.Id) ? "call_" + Guid.NewGuid().ToString("N")[..12] : call.Id;
            contents.Add(new FunctionCallContent(id, call.Name, arguments) { RawRepresentation = call with { Id = id } });
        }
        error = null;
        return contents;
    }
}
