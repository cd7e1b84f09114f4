using FlexPrefill.Tests.Shared;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace FlexPrefill.Cli.Tests;

/// <summary>
/// A Hugging Face Llama folder with random float32 weights written by the test (config.json + model.safetensors,
/// a few hundred KB), optionally with a real tokenizer copied in. Deleted on dispose.
/// </summary>
sealed class TinyModelFolder : IDisposable
{
    public const int Hidden = 32, Layers = 2, Heads = 4, KvHeads = 2, Ffn = 64, Context = 2048;

    public string Path { get; }
    public int VocabSize { get; }
    /// <summary>Elements in all tensors written: what inspect must report.</summary>
    public long Parameters { get; }

    TinyModelFolder(string path, int vocabSize, long parameters)
    {
        Path = path;
        VocabSize = vocabSize;
        Parameters = parameters;
    }

    /// <summary>A model without tokenizer files (prompts as --tokens only).</summary>
    public static TinyModelFolder Create(int vocabSize = 320, bool tieEmbeddings = false, int seed = 7)
    {
        var path = Directory.CreateTempSubdirectory("flexprefill-cli-model-").FullName;
        var config = new Dictionary<string, object>
        {
            ["architectures"] = new[] { "LlamaForCausalLM" },
            ["model_type"] = "llama",
            ["hidden_size"] = Hidden,
            ["intermediate_size"] = Ffn,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["vocab_size"] = vocabSize,
            ["max_position_embeddings"] = Context,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["tie_word_embeddings"] = tieEmbeddings,
            ["torch_dtype"] = "float32",
        };
        File.WriteAllText(System.IO.Path.Combine(path, "config.json"), JsonSerializer.Serialize(config));

        var headDim = Hidden / Heads;
        var tensors = new List<(string Name, long[] Shape, bool Ones)> { ("model.embed_tokens.weight", [vocabSize, Hidden], false) };
        for (var i = 0; i < Layers; i++)
        {
            var p = $"model.layers.{i}.";
            tensors.AddRange([
                (p + "input_layernorm.weight", [Hidden], true),
                (p + "self_attn.q_proj.weight", [Heads * headDim, Hidden], false),
                (p + "self_attn.k_proj.weight", [KvHeads * headDim, Hidden], false),
                (p + "self_attn.v_proj.weight", [KvHeads * headDim, Hidden], false),
                (p + "self_attn.o_proj.weight", [Hidden, Heads * headDim], false),
                (p + "post_attention_layernorm.weight", [Hidden], true),
                (p + "mlp.gate_proj.weight", [Ffn, Hidden], false),
                (p + "mlp.up_proj.weight", [Ffn, Hidden], false),
                (p + "mlp.down_proj.weight", [Hidden, Ffn], false),
            ]);
        }
        tensors.Add(("model.norm.weight", [Hidden], true));
        if (!tieEmbeddings) tensors.Add(("lm_head.weight", [vocabSize, Hidden], false));

        WriteSafetensors(System.IO.Path.Combine(path, "model.safetensors"), tensors, new Random(seed));
        return new TinyModelFolder(path, vocabSize, tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
    }

    /// <summary>A model with the Llama-3 tokenizer (from the test data, see eng/fetch-data.sh), or null when it is absent.</summary>
    public static TinyModelFolder? CreateWithLlama3Tokenizer()
    {
        var tokenizer = System.IO.Path.Combine(TestPaths.DataDirectory, "tokenizers", "llama3", "tokenizer.json");
        if (!File.Exists(tokenizer)) return null;
        var folder = Create(vocabSize: 128256, tieEmbeddings: true);
        File.Copy(tokenizer, System.IO.Path.Combine(folder.Path, "tokenizer.json"));
        File.WriteAllText(System.IO.Path.Combine(folder.Path, "tokenizer_config.json"),
            """{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}""");
        return folder;
    }

    /// <summary>safetensors: 8-byte little-endian header length, JSON header, then the raw little-endian data.</summary>
    static void WriteSafetensors(string path, List<(string Name, long[] Shape, bool Ones)> tensors, Random random)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape, _) in tensors)
        {
            var bytes = shape.Aggregate(1L, (a, b) => a * b) * sizeof(float);
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var headerBytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var padded = (headerBytes.Length + 7) / 8 * 8;

        using var file = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        file.Write(prefix);
        file.Write(headerBytes);
        for (var i = headerBytes.Length; i < padded; i++) file.WriteByte((byte)' ');
        var value = new byte[4];
        foreach (var (_, shape, ones) in tensors)
        {
            var count = shape.Aggregate(1L, (a, b) => a * b);
            for (long i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(value, ones ? 1f : (float)(Gaussian(random) * 0.5));
                file.Write(value);
            }
        }
    }

    static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
