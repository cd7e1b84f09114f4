namespace FlexPrefill.Inference.Attention;

/// <summary>
/// The blocks FlexPrefill computes for one layer: per (batch, query head) a CSR over the query block rows that exist in
/// the call. Coordinates are absolute (docs/flexprefill.md): key block c = keys [c·bs, (c+1)·bs), query block r =
/// positions [r·bs, (r+1)·bs), aligned at position 0; rows <see cref="FirstRow"/> .. <see cref="NumBlocks"/> - 1 exist.
/// </summary>
public sealed class BlockSelection
{
    readonly HeadSelection[] _heads;

    internal BlockSelection(int blockSize, int keyLength, int queryLength, int batchSize, int queryHeads, bool isDenseFallback, HeadSelection[] heads)
    {
        BlockSize = blockSize;
        KeyLength = keyLength;
        QueryLength = queryLength;
        BatchSize = batchSize;
        QueryHeads = queryHeads;
        IsDenseFallback = isDenseFallback;
        _heads = heads;
    }

    /// <summary>Block size bs (queries and keys).</summary>
    public int BlockSize { get; }

    /// <summary>T: keys 0..T-1 (cached prefix included).</summary>
    public int KeyLength { get; }

    /// <summary>S: the queries are positions T-S..T-1.</summary>
    public int QueryLength { get; }

    /// <summary>B.</summary>
    public int BatchSize { get; }

    /// <summary>Hq.</summary>
    public int QueryHeads { get; }

    /// <summary>True when the call is short enough for dense attention (every head then lists all its causal blocks).</summary>
    public bool IsDenseFallback { get; }

    /// <summary>nb = ceil(T / bs).</summary>
    public int NumBlocks => Grid.NumBlocks;

    /// <summary>r0 = floor((T - S) / bs): the first query block row that exists.</summary>
    public int FirstRow => Grid.FirstRow;

    /// <summary>Rows that exist: nb - r0 (the length of every head's row_ptr minus one).</summary>
    public int Rows => Grid.Rows;

    /// <summary>Σ_{r=r0}^{nb-1} (r + 1): blocks on or below the block diagonal, per head.</summary>
    public long CausalBlocks => Grid.CausalBlocks;

    /// <summary>Every head, batch-major: index b·Hq + h.</summary>
    public IReadOnlyList<HeadSelection> Heads => _heads;

    /// <summary>The selection of query head <paramref name="head"/> of batch entry <paramref name="batch"/>.</summary>
    public HeadSelection this[int batch, int head] => _heads[batch * QueryHeads + head];

    internal BlockGrid Grid => new(KeyLength, QueryLength, BlockSize);
}

/// <summary>
/// One head's selection: the pattern, the estimate behind it, the budgets and the CSR (row i of the CSR is query block
/// row FirstRow + i; its key blocks are ascending and unique and always include the diagonal).
/// </summary>
public sealed class HeadSelection
{
    internal HeadSelection(int batch, int head, AttentionPattern pattern, double jsDistance, int verticalBlocks, int slashBands, int[] rowPtr, int[] colIdx)
    {
        Batch = batch;
        Head = head;
        Pattern = pattern;
        JsDistance = jsDistance;
        VerticalBlocks = verticalBlocks;
        SlashBands = slashBands;
        RowPtrArray = rowPtr;
        ColIdxArray = colIdx;
    }

    /// <summary>Batch entry.</summary>
    public int Batch { get; }

    /// <summary>Query head.</summary>
    public int Head { get; }

    /// <summary>Pattern chosen (Dense for the dense fallback).</summary>
    public AttentionPattern Pattern { get; }

    /// <summary>sqrt(JS) between the pooled estimate and the probe's block distribution; NaN for the dense fallback.</summary>
    public double JsDistance { get; }

    /// <summary>K_v: vertical key blocks taken (key block 0 included); 0 for the dense fallback.</summary>
    public int VerticalBlocks { get; }

    /// <summary>K_s: slash bands taken (band 0 included); 0 for the dense fallback.</summary>
    public int SlashBands { get; }

    /// <summary>row_ptr, length Rows + 1, starting at 0.</summary>
    public IReadOnlyList<int> RowPtr => RowPtrArray;

    /// <summary>col_idx: key blocks of row i at [RowPtr[i], RowPtr[i+1]), ascending.</summary>
    public IReadOnlyList<int> ColIdx => ColIdxArray;

    /// <summary>Blocks computed: nnz of the CSR.</summary>
    public long ComputedBlocks => ColIdxArray.Length;

    /// <summary>The key blocks of existing row <paramref name="rowIndex"/> (0 = FirstRow).</summary>
    public ReadOnlySpan<int> Columns(int rowIndex) => ColIdxArray.AsSpan(RowPtrArray[rowIndex], RowPtrArray[rowIndex + 1] - RowPtrArray[rowIndex]);

    internal int[] RowPtrArray { get; }
    internal int[] ColIdxArray { get; }
}

/// <summary>Block geometry of one call in absolute coordinates (SELECTION.md).</summary>
/// <param name="KeyLength">T.</param>
/// <param name="QueryLength">S ≤ T.</param>
/// <param name="BlockSize">bs.</param>
internal readonly record struct BlockGrid(int KeyLength, int QueryLength, int BlockSize)
{
    /// <summary>nb = ceil(T / bs).</summary>
    public int NumBlocks => (KeyLength + BlockSize - 1) / BlockSize;

    /// <summary>Position of the first query: T - S.</summary>
    public int FirstQuery => KeyLength - QueryLength;

    /// <summary>r0 = floor((T - S) / bs).</summary>
    public int FirstRow => FirstQuery / BlockSize;

    /// <summary>nb - r0.</summary>
    public int Rows => NumBlocks - FirstRow;

    /// <summary>Σ_{r=r0}^{nb-1} (r + 1).</summary>
    public long CausalBlocks => ((long)NumBlocks * (NumBlocks + 1) - (long)FirstRow * (FirstRow + 1)) / 2;

    /// <summary>Queries of this call inside query block row <paramref name="r"/> (the true length of a partial block).</summary>
    public int QueriesInRow(int r) => Math.Min((r + 1) * BlockSize, KeyLength) - Math.Max(r * BlockSize, FirstQuery);
}
