using System.Text.Json;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>Reads the small JSON files beside tokenizer.json: tokenizer_config.json and generation_config.json.</summary>
internal static class TokenizerConfig
{
    /// <summary>bos_token and eos_token of tokenizer_config.json (a string or an object with "content"); nulls when absent.</summary>
    public static (string? Bos, string? Eos) ReadSpecialTokens(string path)
    {
        using var document = TryRead(path);
        if (document is null)
        {
            return (null, null);
        }
        return (TokenText(document.RootElement, "bos_token", path), TokenText(document.RootElement, "eos_token", path));
    }

    /// <summary>The chat template text of tokenizer_config.json ("chat_template": a string, or a list of named templates whose "default" is used).</summary>
    public static string? ReadChatTemplate(string path)
    {
        using var document = TryRead(path);
        if (document is null || !document.RootElement.TryGetProperty("chat_template", out var template))
        {
            return null;
        }
        return template.ValueKind switch
        {
            JsonValueKind.String => template.GetString(),
            JsonValueKind.Array => template.EnumerateArray()
                .Where(t => t.TryGetProperty("name", out var name) && name.GetString() == "default")
                .Select(t => t.GetProperty("template").GetString()).FirstOrDefault(),
            _ => null,
        };
    }

    /// <summary>eos_token_id of generation_config.json (a number or a list); empty when absent.</summary>
    public static IReadOnlyList<int> ReadGenerationEosIds(string path)
    {
        using var document = TryRead(path);
        if (document is null || !document.RootElement.TryGetProperty("eos_token_id", out var eos))
        {
            return [];
        }
        try
        {
            return eos.ValueKind switch
            {
                JsonValueKind.Number => [eos.GetInt32()],
                JsonValueKind.Array => eos.EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                JsonValueKind.Null => [],
                _ => throw new FormatException($"a {eos.ValueKind}"),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw new ModelLoadException($"{path}: eos_token_id must be a number or a list of numbers ({e.Message})", e);
        }
    }

    /// <summary>A string field of a JSON file, or null when the file or the field is absent.</summary>
    public static string? ReadString(string path, string field)
    {
        using var document = TryRead(path);
        return document is not null && document.RootElement.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
    }

    private static JsonDocument? TryRead(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            using var stream = File.OpenRead(path);
            var document = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true });
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                throw new ModelLoadException($"{path}: expected a JSON object");
            }
            return document;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"{path}: cannot be read as JSON: {e.Message}", e);
        }
    }

    private static string? TokenText(JsonElement root, string field, string path)
    {
        if (!root.TryGetProperty(field, out var value))
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) => content.GetString(),
            _ => throw new ModelLoadException($"{path}: {field} must be a string or an object with \"content\""),
        };
    }
}
