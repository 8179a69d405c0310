package org.kerashrf.ser.core

import kotlin.math.ln

/**
 * `model_meta.json` is missing a key, has a value of the wrong type or range, is not JSON, or
 * comes from a newer exporter. The message names the file and the dotted key (e.g.
 * `model_meta.json: missing key 'input.scale'`), like `keras_hrf.tflite.load_meta` does.
 */
class ModelMetaException(message: String, cause: Throwable? = null) :
    IllegalArgumentException(message, cause)

/**
 * The log-Mel front-end's parameters: Kotlin twin of `data_prep.features.FeatureParams`.
 *
 * Every number the device must reproduce travels in `model_meta.json` ("feature_params"); see
 * [LogMelFrontEnd] for how each one is used.
 */
data class FeatureParams(
    val sampleRate: Int = 16000,
    val nFft: Int = 512,
    val winLength: Int = 400,
    val hopLength: Int = 160,
    val center: Boolean = false,
    val power: Double = 1.0,
    val nMels: Int = 64,
    val fmin: Double = 0.0,
    val fmax: Double = 8000.0,
    val mel: String = "slaney",
    val logOffset: Double = 1e-6,
    val frames: Int = 300,
    val crop: String = "center",
    val padValue: Double? = null,
    val minDuration: Double = 0.1,
) {
    init {
        // The same checks as FeatureParams.__post_init__, so a hand-edited meta fails here and
        // not as silently different features.
        for ((name, v) in listOf(
            "sample_rate" to sampleRate, "n_fft" to nFft, "win_length" to winLength,
            "hop_length" to hopLength, "n_mels" to nMels, "frames" to frames,
        )) {
            require(v > 0) { "feature_params.$name must be a positive integer, got $v" }
        }
        for ((name, v) in listOf(
            "power" to power, "fmin" to fmin, "fmax" to fmax, "log_offset" to logOffset,
            "min_duration" to minDuration,
        )) {
            require(v.isFinite()) { "feature_params.$name must be finite, got $v" }
        }
        require(nFft and (nFft - 1) == 0) { "feature_params.n_fft must be a power of two, got $nFft" }
        require(winLength <= nFft) { "feature_params.win_length ($winLength) must be <= n_fft ($nFft)" }
        require(power == 1.0 || power == 2.0) {
            "feature_params.power must be 1.0 (magnitude) or 2.0 (power), got $power"
        }
        require(nMels <= nFft / 2 + 1) {
            "feature_params.n_mels ($nMels) must be <= n_fft / 2 + 1 (${nFft / 2 + 1})"
        }
        require(fmin >= 0.0 && fmin < fmax && fmax <= sampleRate / 2.0) {
            "feature_params needs 0 <= fmin < fmax <= sample_rate / 2, got fmin=$fmin, fmax=$fmax"
        }
        require(mel == "slaney" || mel == "htk") { "feature_params.mel must be 'slaney' or 'htk', got '$mel'" }
        require(logOffset > 0) { "feature_params.log_offset must be > 0, got $logOffset" }
        require(crop == "center" || crop == "start") {
            "feature_params.crop must be 'center' or 'start', got '$crop'"
        }
        require(padValue == null || padValue.isFinite()) { "feature_params.pad_value must be finite" }
        require(minDuration >= 0) { "feature_params.min_duration must be >= 0, got $minDuration" }
    }

    /** The log value of digital silence, `log(log_offset)`, as float32 like the features. */
    val floor: Float get() = ln(logOffset).toFloat()

    /** What fixed-length features are padded with: `pad_value`, or [floor] when it is null. */
    val fillValue: Float get() = padValue?.toFloat() ?: floor

    /** Samples spanned by [frames] consecutive frames: one model window. */
    val windowSamples: Int get() = (frames - 1) * hopLength + nFft

    companion object {
        /** The keys `FeatureParams.to_dict()` writes; any other key is an error. */
        val KEYS = setOf(
            "sample_rate", "n_fft", "win_length", "hop_length", "center", "power", "n_mels",
            "fmin", "fmax", "mel", "log_offset", "frames", "crop", "pad_value", "min_duration",
        )
    }
}

/**
 * Per-mel standardisation `(x - mean) / std`: twin of `data_prep.features.Normalizer`.
 *
 * [mean] and [std] are float32, as the Python normaliser stores them, so [transform] performs the
 * same IEEE float operations as `Normalizer.transform` and gives bit-identical results.
 */
class Normalizer(val mean: FloatArray, val std: FloatArray) {
    init {
        require(mean.isNotEmpty() && mean.size == std.size) {
            "normalizer mean and std must be equal-length non-empty vectors, got ${mean.size} and ${std.size}"
        }
        require(mean.all { it.isFinite() } && std.all { it.isFinite() && it > 0f }) {
            "normalizer mean/std must be finite and std > 0"
        }
    }

    /** Normalises band [k] of one value. */
    fun transform(x: Float, k: Int): Float = (x - mean[k]) / std[k]
}

/** Shape, dtype and affine quantization of one model tensor (`model_meta.json` input/output). */
data class TensorInfo(val shape: List<Int>, val dtype: String, val scale: Double, val zeroPoint: Int) {
    /** Number of elements. */
    val size: Int get() = shape.fold(1) { a, b -> a * b }
}

/**
 * A validated `model_meta.json`, the contract between the exporter (`keras-hrf export`) and the
 * app: labels, front-end parameters, normaliser and the int8 model's quantization.
 *
 * Parse with [ModelMeta.parse]; every inconsistency that `keras_hrf.tflite.load_meta` rejects is
 * rejected here too, with a [ModelMetaException] naming the key.
 */
class ModelMeta(
    val schemaVersion: Int,
    val labels: List<String>,
    val featureParams: FeatureParams,
    val normalizer: Normalizer,
    val input: TensorInfo,
    val output: TensorInfo,
    val ops: List<String>,
    val arenaBytes: Long,
    /** The whole document, for fields this class does not model (origin, sizes, ...). */
    val raw: Map<String, Any?>,
) {
    /** Frames of one model window (the input is `[1, frames, n_mels]` or `[1, frames, n_mels, 1]`). */
    val frames: Int get() = input.shape[1]

    /** Mel bands (the input's third dimension). */
    val nMels: Int get() = input.shape[2]

    /**
     * Checks that [model] is the flatbuffer this meta was exported with (its SHA-256 is recorded
     * under `"sha256"`), so that a model and a meta from two different exports cannot be paired:
     * the normaliser and quantization would silently not match the model. A meta without the
     * entry (hand-made) is not checked.
     *
     * @throws ModelMetaException on a mismatch.
     */
    fun checkModel(model: ByteArray, fileName: String = "model_int8.tflite") {
        val expected = (raw["sha256"] as? Map<*, *>)?.get(fileName) as? String ?: return
        val digest = java.security.MessageDigest.getInstance("SHA-256").digest(model)
        val actual = digest.joinToString("") { "%02x".format(it.toInt() and 0xFF) }
        if (!actual.equals(expected, ignoreCase = true)) {
            throw ModelMetaException(
                "$fileName (sha256 ${actual.take(12)}...) is not the model that model_meta.json describes " +
                    "(sha256 ${expected.take(12)}...): copy both files from the same keras-hrf export",
            )
        }
    }

    companion object {
        /** The newest `schema_version` this parser understands (`META_SCHEMA_VERSION`). */
        const val SCHEMA_VERSION = 1

        /** Keys that must be present (dotted = nested): `REQUIRED_META_KEYS` of the exporter. */
        val REQUIRED_KEYS = listOf(
            "schema_version", "labels", "feature_params", "normalizer", "input.shape",
            "input.dtype", "input.scale", "input.zero_point", "output.shape", "output.dtype",
            "output.scale", "output.zero_point", "arena.min_bytes", "arena.recommended_bytes",
            "ops", "files",
        )

        private val NORMALIZER_KEYS = setOf("mean", "std", "exclude_floor", "floor", "feature_fingerprint")

        /**
         * Parses and validates the text of a `model_meta.json`.
         *
         * @param source Name used in error messages (the file or asset name).
         * @throws ModelMetaException with a message naming [source] and the offending key.
         */
        fun parse(text: String, source: String = "model_meta.json"): ModelMeta {
            val doc = try {
                Json.parse(text)
            } catch (e: JsonException) {
                throw ModelMetaException("$source: not valid JSON (${e.message})", e)
            }
            if (doc !is Map<*, *>) throw ModelMetaException("$source: expected a JSON object")
            @Suppress("UNCHECKED_CAST")
            val root = doc as Map<String, Any?>
            val r = Reader(source)
            for (key in REQUIRED_KEYS) r.lookup(root, key)

            val version = r.int(root, "schema_version")
            if (version < 1 || version > SCHEMA_VERSION) {
                throw ModelMetaException(
                    "$source: schema_version $version is not supported (this app reads versions " +
                        "1..$SCHEMA_VERSION); update the app or re-export with a matching keras-hrf",
                )
            }
            val labels = r.list(root, "labels").mapIndexed { i, v ->
                (v as? String)?.takeIf { it.isNotEmpty() }
                    ?: throw ModelMetaException("$source: labels[$i] must be a non-empty string, got ${describe(v)}")
            }
            if (labels.toSet().size != labels.size) throw ModelMetaException("$source: labels are not distinct: $labels")

            val params = featureParams(r, r.map(root, "feature_params"))
            val normalizer = normalizer(r, r.map(root, "normalizer"))
            val input = tensor(r, root, "input")
            val output = tensor(r, root, "output")

            // A model whose first layer is a Conv2D takes [1, frames, n_mels, 1]: the same bytes.
            val shape = input.shape
            if (!(shape.size == 3 || (shape.size == 4 && shape[3] == 1)) || shape[0] != 1) {
                throw ModelMetaException("$source: input.shape $shape is not [1, frames, n_mels] or [1, frames, n_mels, 1]")
            }
            val mels = shape[2]
            if (normalizer.mean.size != mels || params.nMels != mels) {
                throw ModelMetaException(
                    "$source: input has $mels mel bands but feature_params.n_mels is ${params.nMels} " +
                        "and the normaliser has ${normalizer.mean.size}",
                )
            }
            val frames = shape[1]
            if (params.frames != frames) {
                throw ModelMetaException("$source: input has $frames frames but feature_params.frames is ${params.frames}")
            }
            if (labels.size != output.size) {
                throw ModelMetaException("$source: ${labels.size} labels for output ${output.shape}")
            }
            for (t in listOf("input" to input, "output" to output)) {
                if (t.second.dtype != "int8" && t.second.dtype != "float32") {
                    throw ModelMetaException("$source: ${t.first}.dtype must be 'int8' or 'float32', got '${t.second.dtype}'")
                }
                if (!(t.second.scale > 0.0) || !t.second.scale.isFinite()) {
                    throw ModelMetaException("$source: ${t.first}.scale must be a positive number, got ${t.second.scale}")
                }
            }
            val ops = r.list(root, "ops").map { it as? String ?: throw ModelMetaException("$source: ops must be strings") }
            return ModelMeta(
                schemaVersion = version,
                labels = labels,
                featureParams = params,
                normalizer = normalizer,
                input = input,
                output = output,
                ops = ops,
                arenaBytes = r.long(root, "arena.recommended_bytes"),
                raw = root,
            )
        }

        private fun tensor(r: Reader, root: Map<String, Any?>, name: String): TensorInfo {
            val shape = r.list(root, "$name.shape").mapIndexed { i, v ->
                val n = (v as? Long)?.toInt()
                    ?: throw ModelMetaException("${r.source}: $name.shape[$i] must be an integer, got ${describe(v)}")
                if (n <= 0) throw ModelMetaException("${r.source}: $name.shape[$i] must be positive, got $n")
                n
            }
            if (shape.isEmpty()) throw ModelMetaException("${r.source}: $name.shape is empty")
            return TensorInfo(shape, r.string(root, "$name.dtype"), r.double(root, "$name.scale"), r.int(root, "$name.zero_point"))
        }

        private fun featureParams(r: Reader, d: Map<String, Any?>): FeatureParams {
            val unknown = d.keys - FeatureParams.KEYS
            if (unknown.isNotEmpty()) {
                // A misspelt key (e.g. "n_mel") would otherwise silently fall back to a default
                // and make the app compute other features than the model was trained on.
                throw ModelMetaException(
                    "${r.source}: unknown feature_params key(s) ${unknown.sorted()}; known keys: ${FeatureParams.KEYS.sorted()}",
                )
            }
            val p = "feature_params"
            val defaults = FeatureParams()
            fun i(k: String, def: Int) = if (k in d) r.int(d, k, p) else def
            fun f(k: String, def: Double) = if (k in d) r.double(d, k, p) else def
            fun s(k: String, def: String) = if (k in d) r.string(d, k, p) else def
            val center = if ("center" in d) {
                d["center"] as? Boolean
                    ?: throw ModelMetaException("${r.source}: $p.center must be true or false, got ${describe(d["center"])}")
            } else {
                defaults.center
            }
            val pad = if (d["pad_value"] == null) null else r.double(d, "pad_value", p)
            return try {
                FeatureParams(
                    sampleRate = i("sample_rate", defaults.sampleRate),
                    nFft = i("n_fft", defaults.nFft),
                    winLength = i("win_length", defaults.winLength),
                    hopLength = i("hop_length", defaults.hopLength),
                    center = center,
                    power = f("power", defaults.power),
                    nMels = i("n_mels", defaults.nMels),
                    fmin = f("fmin", defaults.fmin),
                    fmax = f("fmax", defaults.fmax),
                    mel = s("mel", defaults.mel),
                    logOffset = f("log_offset", defaults.logOffset),
                    frames = i("frames", defaults.frames),
                    crop = s("crop", defaults.crop),
                    padValue = pad,
                    minDuration = f("min_duration", defaults.minDuration),
                )
            } catch (e: IllegalArgumentException) {
                throw ModelMetaException("${r.source}: ${e.message}", e)
            }
        }

        private fun normalizer(r: Reader, d: Map<String, Any?>): Normalizer {
            val unknown = d.keys - NORMALIZER_KEYS
            if (unknown.isNotEmpty()) {
                throw ModelMetaException(
                    "${r.source}: unknown normalizer key(s) ${unknown.sorted()}; known keys: ${NORMALIZER_KEYS.sorted()}",
                )
            }
            fun floats(k: String): FloatArray {
                val values = r.list(d, k, "normalizer")
                return FloatArray(values.size) { idx ->
                    val v = values[idx] as? Number
                        ?: throw ModelMetaException("${r.source}: normalizer.$k[$idx] must be a number, got ${describe(values[idx])}")
                    v.toDouble().toFloat()
                }
            }
            return try {
                Normalizer(floats("mean"), floats("std"))
            } catch (e: IllegalArgumentException) {
                if (e is ModelMetaException) throw e
                throw ModelMetaException("${r.source}: ${e.message}", e)
            }
        }

        internal fun describe(v: Any?): String = when (v) {
            null -> "null"
            is String -> "the string \"$v\""
            is Map<*, *> -> "an object"
            is List<*> -> "an array"
            else -> v.toString()
        }
    }

    /** Typed access to dotted keys with errors that name the key. */
    private class Reader(val source: String) {
        fun lookup(root: Map<String, Any?>, dotted: String, prefix: String = ""): Any? {
            var cur: Any? = root
            for (part in dotted.split('.')) {
                if (cur !is Map<*, *> || !cur.containsKey(part)) {
                    throw ModelMetaException("$source: missing key '${full(prefix, dotted)}'")
                }
                cur = cur[part]
            }
            return cur
        }

        private fun full(prefix: String, key: String) = if (prefix.isEmpty()) key else "$prefix.$key"

        private fun wrong(prefix: String, key: String, what: String, v: Any?): Nothing =
            throw ModelMetaException("$source: '${full(prefix, key)}' must be $what, got ${describe(v)}")

        fun map(root: Map<String, Any?>, key: String, prefix: String = ""): Map<String, Any?> {
            val v = lookup(root, key, prefix)
            @Suppress("UNCHECKED_CAST")
            return v as? Map<String, Any?> ?: wrong(prefix, key, "an object", v)
        }

        fun list(root: Map<String, Any?>, key: String, prefix: String = ""): List<Any?> {
            val v = lookup(root, key, prefix)
            return v as? List<Any?> ?: wrong(prefix, key, "an array", v)
        }

        fun string(root: Map<String, Any?>, key: String, prefix: String = ""): String {
            val v = lookup(root, key, prefix)
            return v as? String ?: wrong(prefix, key, "a string", v)
        }

        fun long(root: Map<String, Any?>, key: String, prefix: String = ""): Long {
            val v = lookup(root, key, prefix)
            return v as? Long ?: wrong(prefix, key, "an integer", v)
        }

        fun int(root: Map<String, Any?>, key: String, prefix: String = ""): Int {
            val v = long(root, key, prefix)
            if (v < Int.MIN_VALUE || v > Int.MAX_VALUE) wrong(prefix, key, "a 32-bit integer", v)
            return v.toInt()
        }

        fun double(root: Map<String, Any?>, key: String, prefix: String = ""): Double {
            val v = lookup(root, key, prefix)
            // Booleans are not numbers here, unlike in Python where True == 1.
            return (v as? Number)?.toDouble() ?: wrong(prefix, key, "a number", v)
        }
    }
}
