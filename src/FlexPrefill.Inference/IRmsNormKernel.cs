using static TorchSharp.torch;

namespace FlexPrefill.Inference;

/// <summary>
/// A fused RMSNorm for every norm of the model, with transformers' formula (normalise in float32, cast back, then
/// scale): e.g. libflexprefill's one-launch kernel in place of the eight element-wise kernels of the managed ops.
/// Called on the model's inference thread.
/// </summary>
public interface IRmsNormKernel
{
    /// <summary>RMSNorm of <paramref name="x"/> [..., hidden] scaled by <paramref name="weight"/> [hidden], in x's
    /// dtype; null when this kernel does not take these tensors, and the model runs the managed ops.</summary>
    Tensor? Forward(Tensor x, Tensor weight, double eps);
}
