package dev.kerascsp.demo

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import android.widget.Toast
import java.io.File
import java.util.concurrent.Executors

/**
 * Runs the bundled int8 models (CSPDenseNet vs DenseNet; builtin XNNPACK path vs keras-csp fused
 * kernels in the native runner vs the fused file in LiteRT's stock Interpreter with KerasCspDelegate)
 * and shows a table; "Export JSON" writes the results
 * to the app's external files directory.
 */
class MainActivity : Activity() {
    private val executor = Executors.newSingleThreadExecutor()
    private var lastRows: List<BenchRow> = emptyList()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        NativeBench.load()
        val table = findViewById<TextView>(R.id.table)
        val threads = findViewById<EditText>(R.id.threads)
        val run = findViewById<Button>(R.id.run)
        val export = findViewById<Button>(R.id.export)

        run.setOnClickListener {
            val numThreads = threads.text.toString().toIntOrNull()?.coerceIn(1, 8) ?: 1
            run.isEnabled = false
            table.text = "running ..."
            executor.execute {
                val rows = BenchReport.bundledModels.map { model ->
                    runOnUiThread { table.text = "running ${model.label} ..." }
                    val json = if (model.stock) {
                        StockBench.run(copyAsset(model.asset), numThreads, RUNS, WARMUP, BuildConfig.LITERT_VERSION)
                    } else {
                        NativeBench.runBenchmark(
                            LITERT_LIBRARY, BuildConfig.LITERT_VERSION, copyAsset(model.asset).absolutePath,
                            numThreads, RUNS, WARMUP, /* customOps = */ model.fused
                        )
                    }
                    BenchReport.row(model, json)
                }
                runOnUiThread {
                    lastRows = rows
                    table.text = BenchReport.table(rows)
                    run.isEnabled = true
                    export.isEnabled = true
                }
            }
        }

        export.setOnClickListener {
            val device = mapOf(
                "manufacturer" to Build.MANUFACTURER, "model" to Build.MODEL,
                "soc" to (if (Build.VERSION.SDK_INT >= 31) Build.SOC_MODEL else "unknown"),
                "abi" to Build.SUPPORTED_ABIS.joinToString(" "), "sdk" to Build.VERSION.SDK_INT.toString(),
                "litert" to BuildConfig.LITERT_VERSION
            )
            val out = File(getExternalFilesDir(null), "keras_csp_bench.json")
            out.writeText(BenchReport.exportJson(lastRows, device))
            Toast.makeText(this, "wrote ${out.absolutePath}", Toast.LENGTH_LONG).show()
        }
    }

    /** The runner opens models by path: copy the asset to internal storage once. */
    private fun copyAsset(asset: String): File {
        val out = File(filesDir, asset.substringAfterLast('/'))
        if (!out.exists()) {
            assets.open(asset).use { input -> out.outputStream().use { input.copyTo(it) } }
        }
        return out
    }

    override fun onDestroy() {
        executor.shutdown()
        super.onDestroy()
    }

    companion object {
        /** Packaged by the LiteRT Maven artifact; dlopen finds it in the app's native library directory. */
        const val LITERT_LIBRARY = "libLiteRt.so"
        const val RUNS = 30
        const val WARMUP = 5
    }
}
