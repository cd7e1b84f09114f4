using System.ComponentModel;
using Microsoft.SemanticKernel;

namespace FlexPrefill.SemanticKernel.Tests.TestDoubles;

/// <summary>A kernel plugin that records its calls.</summary>
public sealed class WeatherPlugin
{
    readonly List<string> _calls = [];

    public IReadOnlyList<string> Calls { get { lock (_calls) return [.. _calls]; } }

    [KernelFunction("get_weather"), Description("Gets the current weather of a city")]
    public string GetWeather([Description("The city")] string city)
    {
        lock (_calls) _calls.Add(city);
        return $"22 degrees and sunny in {city}";
    }
}
