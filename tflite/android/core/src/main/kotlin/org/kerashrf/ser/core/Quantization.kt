package org.kerashrf.ser.core

import kotlin.math.abs
import kotlin.math.exp

/**
 * Affine int8 quantization exactly as TFLite's `QUANTIZE` (and `keras_hrf.export.quant`) does it:
 * `clamp(round(x / scale) + zero_point, -128, 127)`, with the division in float32 and
 * `std::round` (half away from zero; Kotlin's `roundToInt` and `Math.rint` would differ on
 * exact ties).
 */
class Int8Quantizer(scale: Double, val zeroPoint: Int) {
    private val scale32: Float = scale.toFloat()

    init {
        require(scale > 0.0 && scale.isFinite()) { "quantization scale must be > 0, got $scale" }
        require(zeroPoint in -128..127) { "int8 zero point must be in [-128, 127], got $zeroPoint" }
    }

    /** One value -> int8. @throws IllegalArgumentException for NaN/inf. */
    fun quantize(x: Float): Byte {
        val q = x / scale32
        require(q.isFinite()) { "cannot quantize NaN/inf values" }
        val whole = truncate(q)
        // x - trunc(x) is exact in float, so the tie test is too (floor(x + 0.5) is not).
        val rounded = if (abs(q - whole) >= 0.5f) whole + Math.signum(q) else whole
        val shifted = rounded + zeroPoint
        return shifted.coerceIn(-128f, 127f).toInt().toByte()
    }

    /** int8 -> float: `(q - zero_point) * scale` in float32, like `quant.dequantize`. */
    fun dequantize(q: Byte): Float = (q.toInt() - zeroPoint) * scale32

    private fun truncate(v: Float): Float = if (v < 0f) kotlin.math.ceil(v) else kotlin.math.floor(v)
}

/**
 * Log-Mel features -> the model's int8 input: the normaliser, then the input quantization, the
 * two steps of `ModelMeta.features_to_input` with the same float32 operations, so that equal
 * features give bit-identical int8 inputs (tested on Python's golden features).
 */
class InputQuantizer(val normalizer: Normalizer, scale: Double, zeroPoint: Int) {
    private val quantizer = Int8Quantizer(scale, zeroPoint)

    /** Bands per row. */
    val nMels: Int = normalizer.mean.size

    constructor(meta: ModelMeta) : this(meta.normalizer, meta.input.scale, meta.input.zeroPoint) {
        require(meta.input.dtype == "int8") {
            "the model's input is ${meta.input.dtype}; this app runs int8 models (export with keras-hrf export)"
        }
    }

    /** The normalised value of [x] in band [k] (float32, as `Normalizer.transform`). */
    fun normalize(x: Float, k: Int): Float = normalizer.transform(x, k)

    /** Quantizes one row of [nMels] values from `src[srcOffset]` into `dst[dstOffset]`. */
    fun quantizeRow(src: FloatArray, srcOffset: Int, dst: ByteArray, dstOffset: Int) {
        for (k in 0 until nMels) dst[dstOffset + k] = quantizer.quantize(normalizer.transform(src[srcOffset + k], k))
    }

    /** All rows of [features]: the model input `[frames * n_mels]` (batch 1, row-major). */
    fun quantize(features: Features): ByteArray {
        require(features.nMels == nMels) { "features have ${features.nMels} bands, the normaliser $nMels" }
        val out = ByteArray(features.values.size)
        for (t in 0 until features.frames) quantizeRow(features.values, t * nMels, out, t * nMels)
        return out
    }

    /** The int8 row of a constant feature value in every band (e.g. the log floor of silence). */
    fun constantRow(value: Float): ByteArray {
        val src = FloatArray(nMels) { value }
        return ByteArray(nMels).also { quantizeRow(src, 0, it, 0) }
    }
}

/**
 * The class decision for one model output: arg max (first on ties, like numpy), and the
 * softmax of the dequantized int8 outputs as per-class confidences.
 */
class Decision(val index: Int, val label: String, val probabilities: FloatArray) {
    /** The winning class's probability. */
    val confidence: Float get() = probabilities[index]

    companion object {
        /** Decision from the model's int8 output (the logits, quantized). */
        fun fromInt8(output: ByteArray, meta: ModelMeta): Decision =
            fromInt8(output, meta.labels, meta.output.scale, meta.output.zeroPoint)

        /** Decision from int8 logits with their quantization. */
        fun fromInt8(output: ByteArray, labels: List<String>, scale: Double, zeroPoint: Int): Decision {
            require(output.size == labels.size) { "${output.size} outputs for ${labels.size} labels" }
            val q = Int8Quantizer(scale, zeroPoint)
            val logits = DoubleArray(output.size) { q.dequantize(output[it]).toDouble() }
            return fromProbabilities(softmax(logits), labels)
        }

        /** Decision from probabilities (e.g. smoothed posteriors). */
        fun fromProbabilities(probabilities: FloatArray, labels: List<String>): Decision {
            require(probabilities.size == labels.size && labels.isNotEmpty()) {
                "${probabilities.size} probabilities for ${labels.size} labels"
            }
            val best = argmax(probabilities)
            return Decision(best, labels[best], probabilities)
        }

        /** Index of the largest value; the first one on ties (numpy's `argmax`). */
        fun argmax(values: FloatArray): Int {
            var best = 0
            for (i in 1 until values.size) if (values[i] > values[best]) best = i
            return best
        }

        /** Index of the largest int8 value; the first one on ties. */
        fun argmax(values: ByteArray): Int {
            var best = 0
            for (i in 1 until values.size) if (values[i] > values[best]) best = i
            return best
        }

        /** Numerically stable softmax, in double, returned as float. */
        fun softmax(logits: DoubleArray): FloatArray {
            val max = logits.maxOrNull() ?: return FloatArray(0)
            val e = DoubleArray(logits.size) { exp(logits[it] - max) }
            val sum = e.sum()
            return FloatArray(e.size) { (e[it] / sum).toFloat() }
        }
    }
}
