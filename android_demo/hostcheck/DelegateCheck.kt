// Desktop JVM check of KerasCspDelegate (not part of the Gradle build): loads the host build of
// libkeras_csp_delegate.so through the app's Kotlin class and checks what can run without LiteRT's
// Java Interpreter: creation, the native handle, the report, refusals with a message, close.
//   usage: DelegateCheck <libkeras_csp_delegate.so>
import dev.kerascsp.delegate.KerasCspDelegate
import dev.kerascsp.demo.BenchModel
import dev.kerascsp.demo.BenchReport
import dev.kerascsp.demo.StockBench
import kotlin.system.exitProcess

fun expectRefused(what: String, expected: String, block: () -> Unit): Boolean {
    try {
        block()
    } catch (e: IllegalArgumentException) {
        val ok = (e.message ?: "").contains(expected)
        println("$what: refused: ${e.message}" + if (ok) "" else "  (expected '$expected')")
        return ok
    }
    println("$what: NOT refused")
    return false
}

fun main(args: Array<String>) {
    if (args.size != 1) {
        System.err.println("usage: DelegateCheck <libkeras_csp_delegate.so>")
        exitProcess(2)
    }
    KerasCspDelegate.loadLibrary(args[0])
    var ok = true
    val d = KerasCspDelegate(numThreads = 2)
    val report = d.report()
    println("handle ${d.nativeHandle != 0L}; report $report")
    ok = ok && d.nativeHandle != 0L && report.contains("\"numerics_requested\": \"auto\"")
    d.close()
    d.close()  // idempotent
    ok = ok && d.nativeHandle == 0L
    ok = expectRefused("numerics", "numerics must be auto, xnnpack, builtin or reference") {
        KerasCspDelegate(numerics = "fast")
    } && ok
    ok = expectRefused("version", "runtime version 2.9.0 is untested") {
        KerasCspDelegate(litertVersion = "2.9.0")
    } && ok
    ok = expectRefused("threads", "num_threads must be") { KerasCspDelegate(numThreads = -3) } && ok
    // The third column's JSON goes through the same report code as the native rows.
    val row = BenchReport.row(
        BenchModel("m_fused.tflite", "DenseNet", csp = true, fused = true, stock = true),
        StockBench.timingJson(doubleArrayOf(3.0, 1.0, 2.0), "{}")
    )
    println("stock row: ${row.model.label} median ${row.medianMs} min ${row.minMs}")
    ok = ok && row.medianMs == 2.0 && row.minMs == 1.0 && row.error == null
    exitProcess(if (ok) 0 else 1)
}
