package dev.kerascsp.demo

import dev.kerascsp.delegate.KerasCspDelegate
import org.tensorflow.lite.Interpreter
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The third column: a fused model in LiteRT's stock Java Interpreter with [KerasCspDelegate]
 * (what an app with its own Interpreter code gets), timed like the native benchmark core.
 * Returns the same flat JSON fields BenchReport reads, or {"error": ...}.
 */
object StockBench {
    fun run(model: File, numThreads: Int, runs: Int, warmup: Int, litertVersion: String): String {
        // try/finally rather than `use`: the Interpreter is an AutoCloseable (`use` on those needs
        // kotlin-stdlib-jdk7, which the host check's Kotlin 1.3 lacks).
        return try {
            val delegate = KerasCspDelegate(numThreads = numThreads, litertVersion = litertVersion)
            try {
                val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(numThreads).addDelegate(delegate))
                try {
                    val input = ByteBuffer.allocateDirect(interpreter.getInputTensor(0).numBytes()).order(ByteOrder.nativeOrder())
                    val output = ByteBuffer.allocateDirect(interpreter.getOutputTensor(0).numBytes()).order(ByteOrder.nativeOrder())
                    repeat(warmup + 1) { input.rewind(); output.rewind(); interpreter.run(input, output) }
                    val ms = DoubleArray(runs) {
                        input.rewind()
                        output.rewind()
                        val t0 = System.nanoTime()
                        interpreter.run(input, output)
                        (System.nanoTime() - t0) / 1e6
                    }
                    timingJson(ms, delegate.report())
                } finally {
                    interpreter.close()
                }
            } finally {
                delegate.close()  // after the interpreter that uses it
            }
        } catch (e: Exception) {
            "{\"error\":\"" + (e.message ?: e.toString()).replace("\\", "\\\\").replace("\"", "\\\"") + "\"}"
        }
    }

    /** median / p90 / min of [ms] plus the delegate's report, as the native core's JSON names them. */
    fun timingJson(ms: DoubleArray, delegateReport: String): String {
        val sorted = ms.sorted()
        fun pct(p: Double) = sorted[((sorted.size - 1) * p).toInt()]
        return "{\"path\":\"stock+delegate\",\"median_ms\":${pct(0.5)},\"p90_ms\":${pct(0.9)}," +
            "\"min_ms\":${sorted.first()},\"runs\":${ms.size},\"delegate\":$delegateReport}"
    }
}
