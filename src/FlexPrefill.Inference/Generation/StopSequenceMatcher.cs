using System.Text;

namespace FlexPrefill.Inference.Generation;

/// <summary>
/// Finds stop strings in streamed text that may arrive split across tokens. Text that could still become a stop
/// string is held back until it either completes one (then it is dropped) or can no longer match (then it is released).
/// </summary>
internal sealed class StopSequenceMatcher(IReadOnlyList<string> stops)
{
    readonly string[] _stops = stops.Where(s => s.Length > 0).ToArray();
    readonly StringBuilder _pending = new();

    /// <summary>Adds <paramref name="delta"/>; returns the text now safe to show and whether a stop string ended the output.</summary>
    public (string Text, bool Stopped) Push(string delta)
    {
        if (_stops.Length == 0) return (delta, false);
        _pending.Append(delta);
        string text = _pending.ToString();

        int first = -1;
        foreach (string stop in _stops)
        {
            int at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        if (first >= 0)
        {
            _pending.Clear();
            return (text[..first], true);
        }

        int hold = 0; // the longest tail of the text that begins some stop string
        foreach (string stop in _stops)
            for (int length = Math.Min(stop.Length - 1, text.Length); length > hold; length--)
                if (text.EndsWith(stop[..length], StringComparison.Ordinal)) { hold = length; break; }
        _pending.Clear().Append(text, text.Length - hold, hold);
        return (text[..^hold], false);
    }

    /// <summary>Releases held-back text at the end of the output (it never completed a stop string).</summary>
    public string Flush()
    {
        string text = _pending.ToString();
        _pending.Clear();
        return text;
    }
}
