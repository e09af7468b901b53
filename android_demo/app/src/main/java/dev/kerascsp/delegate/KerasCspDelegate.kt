package dev.kerascsp.delegate

import org.tensorflow.lite.Delegate

/**
 * keras-csp's fused CSP ops for LiteRT's stock Java Interpreter:
 *
 *     val delegate = KerasCspDelegate()
 *     val interpreter = Interpreter(modelFile, Interpreter.Options().addDelegate(delegate))
 *     ...; interpreter.close(); delegate.close()
 *
 * The delegate (libkeras_csp_delegate.so, built by the app's CMake) claims the fused file's
 * CspPartialConv / CspDenseBlock / CspBlock nodes and runs them on keras-csp's kernels; the
 * interpreter's own kernels (XNNPACK by default) run the rest.
 *
 * [numerics]: "auto" (round like the kernels around the fused ops), "xnnpack", "builtin" or "reference".
 * [numThreads]: threads of the fused ops; 0 follows the interpreter's `setNumThreads`.
 * [litertVersion]: version of the LiteRT artifact the app links (the delegate reads the
 * interpreter's structs and refuses versions outside its tested range).
 * Bad options throw IllegalArgumentException with the reason.
 */
class KerasCspDelegate @JvmOverloads constructor(
    numerics: String = "auto",
    numThreads: Int = 0,
    litertVersion: String = TESTED_LITERT_VERSION
) : Delegate, AutoCloseable {
    private var handle: Long

    init {
        loadLibrary()
        handle = nativeCreate(numerics, numThreads, litertVersion)
    }

    override fun getNativeHandle(): Long = handle

    /** JSON: numerics in use, threads, and per fused node its calls and total milliseconds. */
    fun report(): String = nativeReport(handle)

    /** Frees the native delegate; call it after closing every interpreter that uses it. */
    override fun close() {
        if (handle != 0L) {
            nativeDestroy(handle)
            handle = 0L
        }
    }

    companion object {
        const val TESTED_LITERT_VERSION = "2.3.0"

        @Volatile
        private var loaded = false

        /** Loads libkeras_csp_delegate.so (or, on a desktop JVM, the library at [path]). */
        @JvmStatic
        @JvmOverloads
        @Synchronized
        fun loadLibrary(path: String? = null) {
            if (loaded) return
            if (path == null) System.loadLibrary("keras_csp_delegate") else System.load(path)
            loaded = true
        }

        @JvmStatic
        private external fun nativeCreate(numerics: String, numThreads: Int, litertVersion: String): Long

        @JvmStatic
        private external fun nativeDestroy(handle: Long)

        @JvmStatic
        private external fun nativeReport(handle: Long): String
    }
}
