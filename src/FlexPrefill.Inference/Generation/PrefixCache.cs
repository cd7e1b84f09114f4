namespace FlexPrefill.Inference.Generation;

/// <summary>
/// KV caches of earlier requests, keyed by their tokens, least recently used first out, within a byte budget. A new
/// prompt that shares a leading run of tokens with an entry copies those positions' keys and values instead of
/// prefilling them: exact, because a position's keys and values depend only on the tokens up to it.
/// Used on the inference thread only.
/// </summary>
internal sealed class PrefixCache(long capacityBytes) : IDisposable
{
    sealed record Entry(int[] Tokens, KvCache Cache);

    readonly LinkedList<Entry> _entries = new(); // most recently used first
    long _bytes;

    public long Bytes => _bytes;
    public int Count => _entries.Count;

    /// <summary>Cached positions of each entry, most recently used first.</summary>
    public IReadOnlyList<int> EntryLengths => _entries.Select(e => e.Cache.Length).ToArray();

    /// <summary>
    /// Copies the longest cached prefix of <paramref name="prompt"/> into <paramref name="target"/> (at most all but the
    /// last prompt token, whose logits the request needs) and returns its length; 0 when nothing matches.
    /// </summary>
    public int Reuse(IReadOnlyList<int> prompt, KvCache target)
    {
        LinkedListNode<Entry>? best = null;
        int bestLength = 0;
        for (var node = _entries.First; node is not null; node = node.Next)
        {
            int limit = Math.Min(Math.Min(node.Value.Cache.Length, prompt.Count - 1), target.Capacity);
            int common = 0;
            while (common < limit && node.Value.Tokens[common] == prompt[common]) common++;
            if (common > bestLength) { best = node; bestLength = common; }
        }
        if (best is null) return 0;
        target.CopyPrefixFrom(best.Value.Cache, bestLength);
        _entries.Remove(best);
        _entries.AddFirst(best);
        return bestLength;
    }

    /// <summary>
    /// Keeps <paramref name="cache"/> (whose first cache.Length positions hold <paramref name="tokens"/>) and takes
    /// ownership of it; disposes it at once when it does not fit the budget or an entry already covers it.
    /// </summary>
    public void Add(IReadOnlyList<int> tokens, KvCache cache)
    {
        int length = cache.Length;
        if (length == 0 || cache.Bytes > capacityBytes || Covered(tokens, length))
        {
            cache.Dispose();
            return;
        }
        // entries that are a prefix of the new one are superseded by it
        for (var node = _entries.First; node is not null;)
        {
            var next = node.Next;
            if (IsPrefix(node.Value.Tokens, node.Value.Cache.Length, tokens, length)) Remove(node);
            node = next;
        }
        while (_entries.Count > 0 && _bytes + cache.Bytes > capacityBytes) Remove(_entries.Last!);
        _entries.AddFirst(new Entry(tokens.Take(length).ToArray(), cache));
        _bytes += cache.Bytes;
    }

    bool Covered(IReadOnlyList<int> tokens, int length)
    {
        foreach (var e in _entries)
            if (IsPrefix(tokens, length, e.Tokens, e.Cache.Length)) return true;
        return false;
    }

    static bool IsPrefix(IReadOnlyList<int> shorter, int shorterLength, IReadOnlyList<int> longer, int longerLength)
    {
        if (shorterLength > longerLength) return false;
        for (int i = 0; i < shorterLength; i++)
            if (shorter[i] != longer[i]) return false;
        return true;
    }

    void Remove(LinkedListNode<Entry> node)
    {
        _entries.Remove(node);
        _bytes -= node.Value.Cache.Bytes;
        node.Value.Cache.Dispose();
    }

    public void Dispose()
    {
        while (_entries.First is { } node) Remove(node);
    }
}
