import PSEdgeKernels

/// What the runtime detected about this CPU.
public enum CPUInfo {
    /// The SIMD kernel family the dispatcher picks ("avx2", "avx512", "neon-dotprod", "scalar", …).
    public static var kernelFamily: String { String(cString: pse_cpu_kernel_family()) }
}
