using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>
/// Writes JSON the way Python's <c>json.dumps(ensure_ascii=False)</c> does, which is what the Jinja
/// <c>tojson</c> filter of Hugging Face chat templates prints: <c>", "</c> and <c>": "</c> separators
/// (<c>","</c> between lines when indented), keys in their given order, non-ASCII kept. Models were trained on
/// exactly these bytes, so the prompt must match them.
/// </summary>
internal static class PythonJson
{
    /// <summary>Python-style text of a JSON value.</summary>
    public static string Serialize(JsonElement value, int? indent = null)
    {
        var builder = new StringBuilder();
        Write(builder, value, indent, 0);
        return builder.ToString();
    }

    /// <summary>Python-style text of a JSON string, quotes included.</summary>
    public static string Quote(string text)
    {
        var builder = new StringBuilder(text.Length + 2);
        WriteString(builder, text);
        return builder.ToString();
    }

    /// <summary>The OpenAI-style tool entry chat templates are given: {"type": "function", "function": {name, description, parameters}}.</summary>
    public static JsonElement ToolEntry(ToolDefinition tool)
    {
        JsonNode? parameters;
        try
        {
            parameters = JsonNode.Parse(string.IsNullOrWhiteSpace(tool.ParametersJsonSchema) ? "{}" : tool.ParametersJsonSchema);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"tool \"{tool.Name}\": ParametersJsonSchema is not valid JSON: {e.Message}", nameof(tool), e);
        }
        var entry = new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject
            {
                ["name"] = tool.Name,
                ["description"] = tool.Description,
                ["parameters"] = parameters,
            },
        };
        return JsonSerializer.SerializeToElement(entry, JsonNodeContext.Default.JsonObject);
    }

    /// <summary>A tool call's arguments in Python style; text that is not JSON is written unchanged.</summary>
    public static string Arguments(string argumentsJson)
    {
        try
        {
            using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(argumentsJson) ? "{}" : argumentsJson);
            return Serialize(document.RootElement);
        }
        catch (JsonException)
        {
            return argumentsJson;
        }
    }

    private static void Write(StringBuilder builder, JsonElement value, int? indent, int level)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                WriteContainer(builder, '{', '}', value.EnumerateObject().Select(p => ((string?)p.Name, p.Value)).ToList(), indent, level);
                break;
            case JsonValueKind.Array:
                WriteContainer(builder, '[', ']', value.EnumerateArray().Select(v => ((string?)null, v)).ToList(), indent, level);
                break;
            case JsonValueKind.String:
                WriteString(builder, value.GetString()!);
                break;
            default:
                // Numbers keep their text (Python would also write 1.5 as 1.5); true, false, null are spelled alike.
                builder.Append(value.GetRawText());
                break;
        }
    }

    private static void WriteContainer(StringBuilder builder, char open, char close, List<(string? Key, JsonElement Value)> items, int? indent, int level)
    {
        builder.Append(open);
        if (items.Count == 0)
        {
            builder.Append(close);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                builder.Append(indent is null ? ", " : ",");
            }
            if (indent is int width)
            {
                builder.Append('\n').Append(' ', width * (level + 1));
            }
            if (items[i].Key is string key)
            {
                WriteString(builder, key);
                builder.Append(": ");
            }
            Write(builder, items[i].Value, indent, level + 1);
        }
        if (indent is int w)
        {
            builder.Append('\n').Append(' ', w * level);
        }
        builder.Append(close);
    }

    private static void WriteString(StringBuilder builder, string text)
    {
        builder.Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                case '\b': builder.Append("\\b"); break;
                case '\f': builder.Append("\\f"); break;
                case < ' ': builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: builder.Append(c); break;
            }
        }
        builder.Append('"');
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(JsonObject))]
internal sealed partial class JsonNodeContext : System.Text.Json.Serialization.JsonSerializerContext;
