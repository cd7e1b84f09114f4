namespace FlexPrefill.SemanticKernel;

/// <summary>A request asked for JSON (<c>response_format</c>) and the model's reply is not valid JSON.</summary>
public sealed class JsonResponseFormatException : InvalidOperationException
{
    /// <summary>Creates the exception for <paramref name="output"/>.</summary>
    /// <param name="output">What the model returned.</param>
    /// <param name="parseError">Why it is not JSON.</param>
    public JsonResponseFormatException(string output, string parseError)
        : base($"the request asked for JSON but the model's reply is not valid JSON ({parseError}); reply starts: \"{Preview(output)}\"")
    {
        Output = output;
        ParseError = parseError;
    }

    /// <summary>The model's reply.</summary>
    public string Output { get; }

    /// <summary>The JSON parser's message.</summary>
    public string ParseError { get; }

    static string Preview(string s) => s.Length <= 80 ? s : string.Concat(s.AsSpan(0, 80), "…");
}
