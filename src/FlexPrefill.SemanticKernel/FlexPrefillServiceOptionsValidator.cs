using Microsoft.Extensions.Options;

namespace FlexPrefill.SemanticKernel;

/// <summary>Checks <see cref="FlexPrefillServiceOptions"/>; each failure names the setting, its value and the limit.</summary>
internal sealed class FlexPrefillServiceOptionsValidator : IValidateOptions<FlexPrefillServiceOptions>
{
    const string S = FlexPrefillServiceOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, FlexPrefillServiceOptions o)
    {
        List<string> failures = [];
        if (string.IsNullOrWhiteSpace(o.ModelPath))
            failures.Add($"{S}:ModelPath is required: the Hugging Face model folder");
        else if (!Directory.Exists(o.ModelPath))
            failures.Add($"{S}:ModelPath '{o.ModelPath}' is not a directory");
        if (!IsDevice(o.Device))
            failures.Add($"{S}:Device is '{o.Device}'; it must be 'cpu', 'cuda' or 'cuda:N'");
        if (o.DType is not (null or "bfloat16" or "float16" or "float32"))
            failures.Add($"{S}:DType is '{o.DType}'; it must be 'bfloat16', 'float16' or 'float32' (or unset)");
        if (o.NativeLibraryPath is { } lib && !File.Exists(lib))
            failures.Add($"{S}:NativeLibraryPath '{lib}' is not a file");
        if (o.MaxContextTokens is < 16)
            failures.Add($"{S}:MaxContextTokens is {o.MaxContextTokens}; it must be at least 16 (or unset for the model's context)");
        if (!Enum.IsDefined(o.Attention))
            failures.Add($"{S}:Attention is {(int)o.Attention}; it must be Dense or FlexPrefill");
        if (!(o.Gamma > 0 && o.Gamma <= 1))
            failures.Add($"{S}:Gamma is {o.Gamma}; it must be in (0, 1]");
        if (!(o.Tau >= 0 && o.Tau <= 1))
            failures.Add($"{S}:Tau is {o.Tau}; it must be in [0, 1]");
        if (o.MinBudget < 0)
            failures.Add($"{S}:MinBudget is {o.MinBudget}; it must be ≥ 0");
        if (o.QueueCapacity < 1)
            failures.Add($"{S}:QueueCapacity is {o.QueueCapacity}; it must be ≥ 1");
        if (o.PrefixCacheBytes < 0)
            failures.Add($"{S}:PrefixCacheBytes is {o.PrefixCacheBytes}; it must be ≥ 0 (0 disables the prefix cache)");
        if (o.MaxOutputTokens < 1)
            failures.Add($"{S}:MaxOutputTokens is {o.MaxOutputTokens}; it must be ≥ 1");
        if (o.MaxContextTokens is { } max && o.MaxOutputTokens >= max)
            failures.Add($"{S}:MaxOutputTokens is {o.MaxOutputTokens}; it must be below MaxContextTokens ({max})");
        if (o.LogPrefillProgressAboveTokens < 0)
            failures.Add($"{S}:LogPrefillProgressAboveTokens is {o.LogPrefillProgressAboveTokens}; it must be ≥ 0");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    static bool IsDevice(string? device) =>
        device is "cpu" or "cuda" || (device is not null && device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(device.AsSpan(5), out int i) && i >= 0);
}
