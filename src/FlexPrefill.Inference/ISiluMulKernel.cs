using static TorchSharp.torch;

namespace FlexPrefill.Inference;

/// <summary>
/// A fused SwiGLU activation for every MLP of the model, silu(gate) · up with PyTorch's bf16 eager roundings (silu
/// rounded to the dtype, then the product): e.g. libflexprefill's one-launch kernel in place of the two element-wise
/// kernels of the managed ops. Called on the model's inference thread.
/// </summary>
public interface ISiluMulKernel
{
    /// <summary>silu(gate) · up [..., F] in the dtype of <paramref name="gateUp"/> [..., 2F] = [gate | up] (the fused
    /// gate/up projection); null when this kernel does not take the tensor, and the model runs the managed ops.</summary>
    Tensor? Forward(Tensor gateUp);
}
