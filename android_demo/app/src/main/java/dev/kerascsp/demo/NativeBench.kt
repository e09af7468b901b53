package dev.kerascsp.demo

/**
 * JNI bridge to the native benchmark core (src/main/cpp/jni_bridge.cc): the same C++ runner and
 * keras-csp kernels as the desktop `kcsp_bench`, over the LiteRT C API with our custom ops registered.
 */
object NativeBench {
    @Volatile
    private var loaded = false

    /** Loads libkcsp_jni.so (or, on a desktop JVM, the library at [path]). */
    @Synchronized
    fun load(path: String? = null) {
        if (loaded) return
        if (path == null) System.loadLibrary("kcsp_jni") else System.load(path)
        loaded = true
    }

    /**
     * Benchmarks one model: one untimed run, [warmup] more, then [runs] timed runs.
     * Returns the benchmark JSON, or `{"error": "..."}` if anything fails (never throws from native code).
     * [customOps] must be true for fused models (CspPartialConv / CspDenseBlock ops).
     */
    @JvmStatic
    external fun runBenchmark(
        litertLibrary: String,
        litertVersion: String,
        modelPath: String,
        numThreads: Int,
        runs: Int,
        warmup: Int,
        customOps: Boolean
    ): String
}
