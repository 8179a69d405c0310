package org.kerashrf.ser.core

/**
 * The mel filter bank of `librosa.filters.mel(..., norm="slaney", dtype=float32)`, the one that
 * `data_prep.features.mel_filters` uses, computed from [FeatureParams] in Kotlin.
 *
 * Computed rather than shipped as a table so that the app needs nothing but `model_meta.json`
 * next to the model; the CI tests compare it with Python's table value by value (golden
 * `mel_filters.f32`). Every step follows librosa 0.11 operation by operation in double
 * precision (numpy's `rfftfreq` and `linspace` formulas included), and the two roundings to
 * float32 that librosa does (weights stored in a float32 array, then multiplied in place by the
 * float64 Slaney norm) are reproduced, so the float32 coefficients agree to the last bit except
 * where the last ulp of a transcendental function differs.
 *
 * Stored sparse: band `k` covers FFT bins `[first[k], first[k] + weights[k].size)`.
 */
class MelFilterBank(params: FeatureParams) {
    /** Number of bands. */
    val nMels: Int = params.nMels

    /** FFT bins per frame, `n_fft / 2 + 1`. */
    val nBins: Int = params.nFft / 2 + 1

    /** First non-zero bin of each band (0 for an empty band). */
    val first: IntArray

    /** The band's coefficients from [first] up to its last non-zero bin (empty for an empty band). */
    val weights: Array<FloatArray>

    init {
        val dense = dense(params)
        first = IntArray(nMels)
        weights = Array(nMels) { k ->
            val row = dense[k]
            val lo = row.indexOfFirst { it != 0f }
            if (lo < 0) {
                FloatArray(0)
            } else {
                val hi = row.indexOfLast { it != 0f }
                first[k] = lo
                row.copyOfRange(lo, hi + 1)
            }
        }
    }

    /** The full `[n_mels][n_fft / 2 + 1]` matrix, as librosa returns it. */
    fun toDense(): Array<FloatArray> = Array(nMels) { k ->
        FloatArray(nBins).also { row -> weights[k].copyInto(row, first[k]) }
    }

    /** Band energies of one spectrum: `out[k] = sum_b filters[k][b] * spectrum[b]`, in double. */
    fun apply(spectrum: DoubleArray, out: DoubleArray) {
        for (k in 0 until nMels) {
            val w = weights[k]
            val base = first[k]
            var acc = 0.0
            for (j in w.indices) acc += w[j].toDouble() * spectrum[base + j]
            out[k] = acc
        }
    }

    companion object {
        private const val F_SP = 200.0 / 3
        private const val MIN_LOG_HZ = 1000.0
        private const val MIN_LOG_MEL = MIN_LOG_HZ / F_SP
        private val LOGSTEP = StrictMath.log(6.4) / 27.0

        /** librosa `hz_to_mel` (Slaney: linear to 1 kHz, logarithmic above; or HTK). */
        fun hzToMel(f: Double, htk: Boolean): Double {
            if (htk) return 2595.0 * StrictMath.log10(1.0 + f / 700.0)
            return if (f >= MIN_LOG_HZ) MIN_LOG_MEL + StrictMath.log(f / MIN_LOG_HZ) / LOGSTEP else f / F_SP
        }

        /** librosa `mel_to_hz`, the inverse of [hzToMel]. */
        fun melToHz(m: Double, htk: Boolean): Double {
            if (htk) return 700.0 * (StrictMath.pow(10.0, m / 2595.0) - 1.0)
            return if (m >= MIN_LOG_MEL) MIN_LOG_HZ * StrictMath.exp(LOGSTEP * (m - MIN_LOG_MEL)) else F_SP * m
        }

        /** The dense float32 filter matrix, step by step as `librosa.filters.mel`. */
        fun dense(params: FeatureParams): Array<FloatArray> {
            val htk = params.mel == "htk"
            val nBins = params.nFft / 2 + 1
            // np.fft.rfftfreq(n_fft, d=1/sr): k * (1 / (n * d)).
            val binHz = 1.0 / (params.nFft * (1.0 / params.sampleRate))
            val fftFreqs = DoubleArray(nBins) { it * binHz }
            // mel_frequencies(n_mels + 2, fmin, fmax): np.linspace over mels, endpoint exact.
            val n = params.nMels + 2
            val minMel = hzToMel(params.fmin, htk)
            val maxMel = hzToMel(params.fmax, htk)
            val step = (maxMel - minMel) / (n - 1)
            val melF = DoubleArray(n) { i ->
                val m = if (i == n - 1) maxMel else i * step + minMel
                melToHz(m, htk)
            }
            return Array(params.nMels) { i ->
                val lowerDiff = melF[i + 1] - melF[i]
                val upperDiff = melF[i + 2] - melF[i + 1]
                val enorm = 2.0 / (melF[i + 2] - melF[i])
                FloatArray(nBins) { b ->
                    val lower = -(melF[i] - fftFreqs[b]) / lowerDiff
                    val upper = (melF[i + 2] - fftFreqs[b]) / upperDiff
                    val w = maxOf(0.0, minOf(lower, upper)).toFloat() // stored in a float32 array
                    (w.toDouble() * enorm).toFloat() // `weights *= enorm` in float64, stored float32
                }
            }
        }
    }
}
