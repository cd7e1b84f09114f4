namespace FlexPrefill.Inference.Tokenization;

/// <summary>
/// GPT-2's byte-to-unicode table, used by every byte-level BPE tokenizer.json: printable bytes stand for themselves,
/// the other 68 bytes are shifted to U+0100 and up (space becomes 'Ġ'), so each vocabulary entry is a plain string.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character standing for each byte.</summary>
    public static readonly char[] ByteToChar = BuildTable();

    private static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    /// <summary>The bytes a vocabulary entry stands for; false when it holds a character outside the alphabet.</summary>
    public static bool TryGetBytes(string token, out byte[] bytes)
    {
        bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out bytes[i]))
            {
                return false;
            }
        }
        return true;
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is (>= '!' and <= '~') or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            table[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return table;
    }
}
