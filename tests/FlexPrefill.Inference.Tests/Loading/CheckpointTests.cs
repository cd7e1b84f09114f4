using FlexPrefill.Inference.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Loading;

public sealed class CheckpointTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"fp-ckpt-{Guid.NewGuid():N}");

    public CheckpointTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string File1 => Path.Combine(_dir, Checkpoint.SingleFile);

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void Stored_dtypes_convert_to_the_compute_dtype(ScalarType stored)
    {
        // values exact in every stored dtype
        using var values = tensor(new float[] { 1, -2, 0.5f, 3.25f, -0.125f, 96 }).reshape(2, 3);
        SafetensorsWriter.Write(File1, [("w", values.to(stored))]);
        using var ckpt = Checkpoint.Open(_dir);
        using var f32 = ckpt.Read("w", [2, 3], ScalarType.Float32, CPU);
        Assert.Equal(ScalarType.Float32, f32.dtype);
        Assert.True(f32.allclose(values, rtol: 0, atol: 0));
        using var bf16 = ckpt.Read("w", [2, 3], ScalarType.BFloat16, CPU);
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        Assert.True(bf16.to(ScalarType.Float32).allclose(values, rtol: 0, atol: 0));
    }

    [Fact]
    public void Sharded_checkpoints_are_found_through_the_index()
    {
        using var a = arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        using var b = ones(4);
        SafetensorsWriter.Write(Path.Combine(_dir, "model-00001-of-00002.safetensors"), [("a", a)]);
        SafetensorsWriter.Write(Path.Combine(_dir, "model-00002-of-00002.safetensors"), [("b", b)]);
        File.WriteAllText(Path.Combine(_dir, Checkpoint.IndexFile),
            """{"metadata": {"total_size": 40}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}""");
        using var ckpt = Checkpoint.Open(_dir);
        Assert.Equal(["a", "b"], ckpt.Keys.Order());
        using var ra = ckpt.Read("a", [2, 3], ScalarType.Float32, CPU);
        using var rb = ckpt.Read("b", [4], ScalarType.Float32, CPU);
        Assert.True(ra.allclose(a, rtol: 0, atol: 0));
        Assert.True(rb.allclose(b, rtol: 0, atol: 0));
    }

    [Fact]
    public void A_wrong_shape_names_the_file_the_tensor_and_both_shapes()
    {
        using var w = zeros(2, 3);
        SafetensorsWriter.Write(File1, [("model.norm.weight", w)]);
        using var ckpt = Checkpoint.Open(_dir);
        var e = Assert.Throws<ModelLoadException>(() => ckpt.Read("model.norm.weight", [3, 2], ScalarType.Float32, CPU));
        Assert.Contains(File1, e.Message);
        Assert.Contains("model.norm.weight", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[3, 2]", e.Message);
    }

    [Fact]
    public void An_unsupported_dtype_is_named()
    {
        using var w = zeros(new long[] { 4 }, ScalarType.Int8);
        SafetensorsWriter.Write(File1, [("q", w)]);
        using var ckpt = Checkpoint.Open(_dir);
        var e = Assert.Throws<ModelLoadException>(() => ckpt.Read("q", [4], ScalarType.Float32, CPU));
        Assert.Contains("I8", e.Message);
        Assert.Contains("q", e.Message);
    }

    [Fact]
    public void A_missing_tensor_is_named_with_its_expected_shape()
    {
        using var w = zeros(2);
        SafetensorsWriter.Write(File1, [("present", w)]);
        using var ckpt = Checkpoint.Open(_dir);
        var e = Assert.Throws<ModelLoadException>(() => ckpt.Read("lm_head.weight", [5, 2], ScalarType.Float32, CPU));
        Assert.Contains("lm_head.weight", e.Message);
        Assert.Contains("[5, 2]", e.Message);
    }

    [Fact]
    public void A_header_length_beyond_the_file_is_a_corrupt_header()
    {
        SafetensorsWriter.WriteRaw(File1, "{}", [], declaredHeaderLength: 1 << 20);
        var e = Assert.Throws<ModelLoadException>(() => Checkpoint.Open(_dir));
        Assert.Contains("corrupt safetensors header", e.Message);
        Assert.Contains(File1, e.Message);
    }

    [Fact]
    public void A_header_that_is_not_json_is_a_corrupt_header()
    {
        SafetensorsWriter.WriteRaw(File1, "{\"w\": {\"dtype\": \"F32\", ", new byte[8]);
        var e = Assert.Throws<ModelLoadException>(() => Checkpoint.Open(_dir));
        Assert.Contains("corrupt safetensors header", e.Message);
    }

    [Fact]
    public void Data_offsets_that_disagree_with_the_shape_are_a_corrupt_header()
    {
        SafetensorsWriter.WriteRaw(File1, """{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}""", new byte[16]);
        var e = Assert.Throws<ModelLoadException>(() => Checkpoint.Open(_dir));
        Assert.Contains("w", e.Message);
        Assert.Contains("8 bytes", e.Message);
    }

    [Fact]
    public void A_folder_without_weights_says_what_it_looked_for()
    {
        var e = Assert.Throws<ModelLoadException>(() => Checkpoint.Open(_dir));
        Assert.Contains(Checkpoint.SingleFile, e.Message);
        Assert.Contains(Checkpoint.IndexFile, e.Message);
    }

    [Fact]
    public void A_shard_missing_from_the_folder_is_named()
    {
        File.WriteAllText(Path.Combine(_dir, Checkpoint.IndexFile), """{"weight_map": {"a": "model-00001-of-00002.safetensors"}}""");
        var e = Assert.Throws<ModelLoadException>(() => Checkpoint.Open(_dir));
        Assert.Contains("model-00001-of-00002.safetensors", e.Message);
    }

    [Fact]
    public void Bare_decoder_keys_are_found_for_model_prefixed_names()
    {
        var keys = new HashSet<string> { "layers.0.mlp.up_proj.weight", "model.norm.weight" };
        Assert.Equal("layers.0.mlp.up_proj.weight", KeyRemap.CheckpointKey("model.layers.0.mlp.up_proj.weight", keys.Contains));
        Assert.Equal("model.norm.weight", KeyRemap.CheckpointKey("model.norm.weight", keys.Contains));
        Assert.Equal("lm_head.weight", KeyRemap.CheckpointKey("lm_head.weight", keys.Contains));
    }
}
