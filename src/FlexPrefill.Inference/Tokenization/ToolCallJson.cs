using System.Text;
using System.Text.Json;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>Reads tool calls written as JSON objects <c>{"name": ..., "arguments" | "parameters": {...}}</c>, the shape both families use.</summary>
internal static class ToolCallJson
{
    /// <summary>
    /// Reads JSON objects one after another from <paramref name="text"/>, separated by whitespace or ';'
    /// (how Llama-3.1 models write parallel calls). Returns the calls and the text left after the last object.
    /// </summary>
    public static bool TryReadSequence(string text, out List<ToolCall> calls, out string rest, out string? error)
    {
        calls = [];
        rest = string.Empty;
        error = null;
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        int position = SkipSeparators(bytes, 0);
        while (position < bytes.Length && bytes[position] == (byte)'{')
        {
            if (!TryReadOne(bytes.AsSpan(position), out var call, out int consumed, out error))
            {
                return false;
            }
            calls.Add(call);
            position = SkipSeparators(bytes, position + consumed);
        }
        rest = Encoding.UTF8.GetString(bytes, position, bytes.Length - position);
        if (calls.Count == 0)
        {
            error = "no JSON object with a \"name\" was found";
            return false;
        }
        return true;
    }

    /// <summary>Reads exactly one tool-call object (whitespace around it allowed).</summary>
    public static bool TryReadSingle(string text, out ToolCall call, out string? error)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text.Trim());
        if (!TryReadOne(bytes, out call, out int consumed, out error))
        {
            return false;
        }
        if (consumed != bytes.Length)
        {
            error = "unexpected text after the tool call's JSON object";
            return false;
        }
        return true;
    }

    /// <summary>A call id in the OpenAI style, for formats that carry none.</summary>
    public static string NewCallId() => "call_" + Guid.NewGuid().ToString("N")[..24];

    private static bool TryReadOne(ReadOnlySpan<byte> bytes, out ToolCall call, out int consumed, out string? error)
    {
        call = null!;
        consumed = 0;
        error = null;
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { AllowMultipleValues = true });
            document = JsonDocument.ParseValue(ref reader);
            consumed = (int)reader.BytesConsumed;
        }
        catch (JsonException e)
        {
            error = $"tool call is not valid JSON: {e.Message}";
            return false;
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString() is not { Length: > 0 } functionName)
            {
                error = "tool call has no \"name\" string";
                return false;
            }
            string arguments = "{}";
            if (root.TryGetProperty("arguments", out var args) || root.TryGetProperty("parameters", out args))
            {
                if (args.ValueKind == JsonValueKind.String)
                {
                    // Some models write the arguments as a JSON string holding the object.
                    try
                    {
                        using var inner = JsonDocument.Parse(args.GetString()!);
                        args = inner.RootElement.Clone();
                    }
                    catch (JsonException e)
                    {
                        error = $"arguments of \"{functionName}\" are a string that is not JSON: {e.Message}";
                        return false;
                    }
                }
                if (args.ValueKind != JsonValueKind.Object)
                {
                    error = $"arguments of \"{functionName}\" must be a JSON object, not {args.ValueKind}";
                    return false;
                }
                arguments = args.GetRawText();
            }
            call = new ToolCall(NewCallId(), functionName, arguments);
            return true;
        }
    }

    private static int SkipSeparators(byte[] bytes, int position)
    {
        while (position < bytes.Length && (bytes[position] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)';'))
        {
            position++;
        }
        return position;
    }
}
