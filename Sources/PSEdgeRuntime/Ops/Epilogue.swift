import Foundation
import PSEdgeIR
import PSEdgeKernels

/// Activation functions a fused op applies in its epilogue.
public enum Activation: String, CaseIterable, Sendable {
    case none, relu, silu, gelu, sigmoid

    /// Reads the `activation` attribute of a fused node (default none).
    static func from(_ ctx: KernelContext) throws -> Activation {
        let s = try ctx.attrs.string("activation", default: "none")
        guard let a = Activation(rawValue: s) else {
            throw PSEdgeError.unsupported("\(ctx.label): activation '\(s)' (supported: \(Activation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return a
    }

    /// y[i] = act(y[i]) in place. SiLU and GELU compute exactly what the unfused Sigmoid·Mul and Gelu kernels do,
    /// so fusing them does not change results.
    func apply(_ y: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .none: break
        case .relu: for i in 0..<n { y[i] = max(y[i], 0) }
        case .sigmoid: pse_ops_sigmoid(y, y, n)
        case .silu: pse_ops_silu(y, y, n)
        case .gelu: pse_ops_gelu(y, y, n)
        }
    }
}

/// What a fused linear op (conv, matmul, gemm) does to its raw product before writing it:
/// y = act(y + bias) + residual, or act(y + bias + residual) when the residual add came first in the source graph.
struct Epilogue {
    var activation: Activation = .none
    /// The residual is added before the activation (ResNet: relu(conv + shortcut)).
    var residualBeforeActivation = false

    /// Applies the epilogue to `rows` rows of `cols` values; bias is per row (conv channels) or per column
    /// (matmul features), residual has the output's layout.
    func apply(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, rowBias: UnsafePointer<Float>?, colBias: UnsafePointer<Float>?,
               residual: UnsafePointer<Float>?) {
        for r in 0..<rows {
            let p = y + r * cols
            if let b = rowBias { let v = b[r]; for j in 0..<cols { p[j] += v } }
            if let b = colBias { for j in 0..<cols { p[j] += b[j] } }
            if let res = residual, residualBeforeActivation { let q = res + r * cols; for j in 0..<cols { p[j] += q[j] } }
            activation.apply(p, cols)
            if let res = residual, !residualBeforeActivation { let q = res + r * cols; for j in 0..<cols { p[j] += q[j] } }
        }
    }

    // Tiled C kernels (QConv, the fp32 panel conv) add the bias, the residual when it comes first and ReLU as they
    // store; these finish the rest.

    /// The C kernel can do the whole activation (none or ReLU).
    var activationInC: Bool { activation == .none || activation == .relu }
    /// The C kernel adds the residual: unless a non-ReLU activation has to come between.
    var residualInC: Bool { residualBeforeActivation || activationInC }

    /// After the C kernel wrote a tile (rows × cols, row stride ld): a non-ReLU activation, then a late residual
    /// (row stride residualLD, default ld).
    func finishTile(_ o: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, residual: UnsafePointer<Float>?,
                    residualLD: Int? = nil) {
        if activationInC { return }
        let rld = residualLD ?? ld
        for i in 0..<rows {
            let oi = o + i * ld
            activation.apply(oi, cols)
            if let res = residual, !residualBeforeActivation { for j in 0..<cols { oi[j] += res[i * rld + j] } }
        }
    }

    /// True when applying it changes nothing (no bias, residual or activation to add).
    func isIdentity(bias: Bool, residual: Bool) -> Bool { !bias && !residual && activation == .none }

    static func from(_ ctx: KernelContext) throws -> Epilogue {
        Epilogue(activation: try Activation.from(ctx),
                 residualBeforeActivation: try ctx.attrs.int("residual_before_activation", default: 0) != 0)
    }
}
