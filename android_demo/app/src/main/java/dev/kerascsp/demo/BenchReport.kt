package dev.kerascsp.demo

/**
 * One bundled model: [family] groups a CSP model with its plain twin, [fused] marks the rewritten file,
 * [stock] runs it in LiteRT's stock Interpreter with KerasCspDelegate instead of the native runner.
 */
data class BenchModel(
    val asset: String,
    val family: String,
    val csp: Boolean,
    val fused: Boolean,
    val stock: Boolean = false
) {
    val label: String
        get() = (if (csp) "CSP" else "plain") + "-" + family + when {
            stock -> " stock+dlg"
            fused -> " fused"
            else -> " builtin"
        }
}

data class BenchRow(
    val model: BenchModel,
    val medianMs: Double?,
    val p90Ms: Double?,
    val minMs: Double?,
    val error: String?,
    val json: String
)

/** Reads single top-level fields from the benchmark JSON (flat numbers and strings only). */
object JsonFields {
    fun number(json: String, key: String): Double? =
        Regex("\"" + Regex.escape(key) + "\"\\s*:\\s*(-?[0-9.eE+-]+)").find(json)?.groupValues?.get(1)?.toDoubleOrNull()

    fun string(json: String, key: String): String? =
        Regex("\"" + Regex.escape(key) + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").find(json)?.groupValues?.get(1)
}

/** Turns benchmark JSON into the app's table and its export file; no Android APIs, so it runs on any JVM. */
object BenchReport {
    val bundledModels = listOf(
        BenchModel("models/cspdensenet_int8.tflite", "DenseNet", csp = true, fused = false),
        BenchModel("models/cspdensenet_int8_fused.tflite", "DenseNet", csp = true, fused = true),
        BenchModel("models/densenet_int8.tflite", "DenseNet", csp = false, fused = false),
        BenchModel("models/densenet_int8_fused.tflite", "DenseNet", csp = false, fused = true),
        BenchModel("models/cspdensenet_int8_fused.tflite", "DenseNet", csp = true, fused = true, stock = true),
        BenchModel("models/densenet_int8_fused.tflite", "DenseNet", csp = false, fused = true, stock = true)
    )

    fun row(model: BenchModel, json: String): BenchRow = BenchRow(
        model,
        JsonFields.number(json, "median_ms"),
        JsonFields.number(json, "p90_ms"),
        JsonFields.number(json, "min_ms"),
        JsonFields.string(json, "error"),
        json
    )

    /** Median-latency speedup of [row] over the builtin run of the same model, or null. */
    fun fusedSpeedup(rows: List<BenchRow>, row: BenchRow): Double? {
        if (!row.model.fused) return null
        val builtin = rows.firstOrNull {
            !it.model.fused && it.model.csp == row.model.csp && it.model.family == row.model.family
        }
        return ratio(builtin?.medianMs, row.medianMs)
    }

    /** Median-latency speedup of the CSP model over its plain twin on the same path, or null. */
    fun cspSpeedup(rows: List<BenchRow>, row: BenchRow): Double? {
        if (!row.model.csp) return null
        val plain = rows.firstOrNull {
            !it.model.csp && it.model.fused == row.model.fused && it.model.stock == row.model.stock &&
                it.model.family == row.model.family
        }
        return ratio(plain?.medianMs, row.medianMs)
    }

    private fun ratio(base: Double?, value: Double?): Double? =
        if (base == null || value == null || value <= 0.0) null else base / value

    private fun fmt(v: Double?, digits: Int = 2): String = if (v == null) "-" else String.format("%.${digits}f", v)

    fun table(rows: List<BenchRow>): String {
        val sb = StringBuilder()
        sb.append(String.format("%-22s %9s %9s %9s %8s %8s%n", "model", "median", "p90", "min", "fused x", "CSP x"))
        for (r in rows) {
            if (r.error != null) {
                sb.append(String.format("%-22s error: %s%n", r.model.label, r.error))
                continue
            }
            sb.append(String.format("%-22s %9s %9s %9s %8s %8s%n", r.model.label, fmt(r.medianMs), fmt(r.p90Ms),
                fmt(r.minMs), fmt(fusedSpeedup(rows, r)), fmt(cspSpeedup(rows, r))))
        }
        sb.append("latency in ms; x = speedup of median latency")
        // The fused ops' int8 kernels chosen for this phone's CPU (neon_i8mm, neon_dotprod or neon).
        rows.mapNotNull { JsonFields.string(it.json, "int8_variant") }.firstOrNull()?.let {
            sb.append(String.format("%nfused-op int8 kernels: %s", it))
        }
        return sb.toString()
    }

    /** The export file: device facts plus every run's full benchmark JSON. */
    fun exportJson(rows: List<BenchRow>, device: Map<String, String>): String {
        val deviceJson = device.entries.joinToString(",") { "\"" + escape(it.key) + "\":\"" + escape(it.value) + "\"" }
        val runs = rows.joinToString(",") {
            "{\"label\":\"" + escape(it.model.label) + "\",\"asset\":\"" + escape(it.model.asset) +
                "\",\"fused_speedup\":" + (fusedSpeedup(rows, it)?.toString() ?: "null") +
                ",\"csp_speedup\":" + (cspSpeedup(rows, it)?.toString() ?: "null") + ",\"result\":" + it.json + "}"
        }
        return "{\"device\":{$deviceJson},\"runs\":[$runs]}"
    }

    private fun escape(s: String): String = s.replace("\\", "\\\\").replace("\"", "\\\"")
}
