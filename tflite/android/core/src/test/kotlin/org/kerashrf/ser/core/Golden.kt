package org.kerashrf.ser.core

import org.junit.Assume
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * Golden vectors written by Python (`tests/tflite/test_android_core.py`): a folder with
 * `golden.json` (the index), `model_meta.json` of a freshly exported model, WAV files and raw
 * little-endian arrays (`.f32`, `.f64`, `.i8`).
 *
 * The folder comes from the system property `kerashrf.golden` or the environment variable
 * `KERAS_HRF_GOLDEN`; tests that need it are skipped (JUnit assumption) when neither is set, so
 * `./gradlew :core:test` without Python still runs the self-contained tests.
 */
object Golden {
    val dir: File? = (System.getProperty("kerashrf.golden") ?: System.getenv("KERAS_HRF_GOLDEN"))
        ?.takeIf { it.isNotEmpty() }?.let { File(it) }

    /** Skips the calling test unless golden vectors are available. */
    fun require(): File {
        Assume.assumeTrue("golden vectors not available (set KERAS_HRF_GOLDEN)", dir != null)
        val d = dir!!
        check(File(d, "golden.json").isFile) { "KERAS_HRF_GOLDEN=$d has no golden.json" }
        return d
    }

    /** The parsed `golden.json`. */
    val index: Map<String, Any?> by lazy {
        @Suppress("UNCHECKED_CAST")
        Json.parse(File(require(), "golden.json").readText()) as Map<String, Any?>
    }

    /** The exported model's meta. */
    val meta: ModelMeta by lazy { ModelMeta.parse(File(require(), "model_meta.json").readText()) }

    fun file(name: String): File = File(require(), name)

    fun f32(name: String): FloatArray {
        val b = ByteBuffer.wrap(file(name).readBytes()).order(ByteOrder.LITTLE_ENDIAN)
        return FloatArray(b.remaining() / 4) { b.float }
    }

    fun f64(name: String): DoubleArray {
        val b = ByteBuffer.wrap(file(name).readBytes()).order(ByteOrder.LITTLE_ENDIAN)
        return DoubleArray(b.remaining() / 8) { b.double }
    }

    fun i8(name: String): ByteArray = file(name).readBytes()

    @Suppress("UNCHECKED_CAST")
    fun list(m: Map<String, Any?>, key: String): List<Map<String, Any?>> = m[key] as List<Map<String, Any?>>

    @Suppress("UNCHECKED_CAST")
    fun obj(m: Map<String, Any?>, key: String): Map<String, Any?> = m[key] as Map<String, Any?>

    fun num(m: Map<String, Any?>, key: String): Double = (m[key] as Number).toDouble()

    fun int(m: Map<String, Any?>, key: String): Int = (m[key] as Number).toInt()

    fun str(m: Map<String, Any?>, key: String): String = m[key] as String

    fun doubles(v: Any?): DoubleArray = (v as List<*>).map { (it as Number).toDouble() }.toDoubleArray()

    fun matrix(v: Any?): List<FloatArray> = (v as List<*>).map { row -> (row as List<*>).map { (it as Number).toFloat() }.toFloatArray() }

    /** Prints a measured number for the CI log (`METRIC name value`, collected by pytest). */
    fun metric(name: String, value: Any) = println("METRIC $name $value")
}

/** A fake engine that returns fixed outputs and records the inputs it was given. */
class RecordingEngine(
    override val inputSize: Int,
    override val outputSize: Int,
    private val respond: (ByteArray) -> ByteArray = { ByteArray(outputSize) },
) : InferenceEngine {
    val inputs = ArrayList<ByteArray>()

    override fun run(input: ByteArray, output: ByteArray) {
        inputs.add(input.copyOf())
        respond(input).copyInto(output)
    }
}
