// Desktop JVM check of the app's Kotlin + JNI path (not part of the Gradle build): loads the host
// build of libkcsp_jni.so, benchmarks models through NativeBench exactly as MainActivity does, and
// prints BenchReport's table and export JSON.
//   usage: HostCheck <libkcsp_jni.so> <libLiteRt.so> <litert version> <model.tflite>...
import dev.kerascsp.demo.BenchModel
import dev.kerascsp.demo.BenchReport
import dev.kerascsp.demo.NativeBench
import kotlin.system.exitProcess

fun main(args: Array<String>) {
    if (args.size < 4) {
        System.err.println("usage: HostCheck <libkcsp_jni.so> <libLiteRt.so> <litert version> <model.tflite>...")
        exitProcess(2)
    }
    NativeBench.load(args[0])
    val rows = args.drop(3).map { path ->
        val name = path.substringAfterLast('/')
        val model = BenchModel(path, "DenseNet", csp = name.startsWith("csp"), fused = name.contains("fused"))
        BenchReport.row(model, NativeBench.runBenchmark(args[1], args[2], path, 1, 5, 1, model.fused))
    }
    println(BenchReport.table(rows))
    println(BenchReport.exportJson(rows, mapOf("host" to "jvm")))
    exitProcess(if (rows.all { it.error == null && it.medianMs != null }) 0 else 1)
}
