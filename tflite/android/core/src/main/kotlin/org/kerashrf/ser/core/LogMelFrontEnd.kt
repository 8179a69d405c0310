package org.kerashrf.ser.core

import kotlin.math.ln
import kotlin.math.sqrt

/**
 * Log-Mel features `[frames][n_mels]`, row-major in [values] (row = one 10 ms frame).
 */
class Features(val frames: Int, val nMels: Int, val values: FloatArray) {
    init {
        require(frames >= 0 && nMels > 0 && values.size == frames * nMels) {
            "Features: ${values.size} values for $frames x $nMels"
        }
    }

    /** Value of frame [t], band [k]. */
    operator fun get(t: Int, k: Int): Float = values[t * nMels + k]

    /** A copy of frame [t]. */
    fun row(t: Int): FloatArray = values.copyOfRange(t * nMels, (t + 1) * nMels)
}

/**
 * In-place iterative radix-2 complex FFT of a fixed power-of-two size, in double precision.
 *
 * Double precision on purpose: librosa multiplies the float32 frame by a float64 window, so
 * numpy's FFT runs in float64; matching that keeps the features within ~1e-6 of Python's even in
 * near-silent bands, where a float32 FFT's rounding noise shows up in the log (up to 1e-3).
 */
class Fft(val size: Int) {
    private val cos: DoubleArray
    private val sin: DoubleArray
    private val reverse: IntArray

    init {
        require(size >= 2 && size and (size - 1) == 0) { "FFT size must be a power of two >= 2, got $size" }
        cos = DoubleArray(size / 2) { StrictMath.cos(2.0 * Math.PI * it / size) }
        sin = DoubleArray(size / 2) { -StrictMath.sin(2.0 * Math.PI * it / size) }
        val bits = Integer.numberOfTrailingZeros(size)
        reverse = IntArray(size) { Integer.reverse(it) ushr (32 - bits) }
    }

    /** Forward transform `X[k] = sum_n x[n] exp(-2 pi i k n / N)` of ([re], [im]) in place. */
    fun transform(re: DoubleArray, im: DoubleArray) {
        require(re.size == size && im.size == size) { "FFT of size $size got ${re.size}/${im.size} values" }
        for (i in 0 until size) {
            val j = reverse[i]
            if (j > i) {
                var t = re[i]; re[i] = re[j]; re[j] = t
                t = im[i]; im[i] = im[j]; im[j] = t
            }
        }
        var len = 2
        while (len <= size) {
            val half = len / 2
            val stride = size / len
            var start = 0
            while (start < size) {
                for (k in 0 until half) {
                    val wr = cos[k * stride]
                    val wi = sin[k * stride]
                    val a = start + k
                    val b = a + half
                    val xr = re[b] * wr - im[b] * wi
                    val xi = re[b] * wi + im[b] * wr
                    re[b] = re[a] - xr
                    im[b] = im[a] - xi
                    re[a] += xr
                    im[a] += xi
                }
                start += len
            }
            len *= 2
        }
    }
}

/**
 * The training features, computed on the phone: Kotlin twin of `data_prep.features.log_mel` and
 * `fix_length` for one [FeatureParams] (in the app, the one in `model_meta.json`).
 *
 * Recipe, value by value as librosa computes it: frame `t` is samples
 * `[t * hop, t * hop + n_fft)` (no centre padding unless `center`), multiplied by a periodic Hann
 * window of `win_length` samples centred in `n_fft` zeros; its real FFT in double precision is
 * rounded to complex64 (librosa's STFT dtype for float32 audio); magnitude in float32 (squared
 * for `power` 2); the mel filters of [MelFilterBank]; then `ln(mel + log_offset)` in float32.
 * The CI tests check the result against Python's features to 1e-4 (measured: ~1e-6).
 *
 * Not thread-safe (scratch buffers are reused); one instance per thread.
 */
class LogMelFrontEnd(val params: FeatureParams) {
    /** The analysis window, `n_fft` values: zeros, the Hann of `win_length`, zeros. */
    val window: DoubleArray = DoubleArray(params.nFft).also { w ->
        val left = (params.nFft - params.winLength) / 2
        for (n in 0 until params.winLength) {
            w[left + n] = 0.5 - 0.5 * StrictMath.cos(2.0 * Math.PI * n / params.winLength)
        }
    }

    /** The mel filters (librosa's, see [MelFilterBank]). */
    val filters = MelFilterBank(params)

    private val fft = Fft(params.nFft)
    private val re = DoubleArray(params.nFft)
    private val im = DoubleArray(params.nFft)
    private val spectrum = DoubleArray(params.nFft / 2 + 1)
    private val mel = DoubleArray(params.nMels)
    private val offset32 = params.logOffset.toFloat()

    /**
     * One frame of log-Mel: `n_fft` samples of [signal] from [start] into
     * `out[outOffset until outOffset + n_mels]`. Samples past the end of [signal] count as zeros.
     */
    fun frame(signal: FloatArray, start: Int, out: FloatArray, outOffset: Int = 0) {
        val n = params.nFft
        for (i in 0 until n) {
            val idx = start + i
            // float32 sample times float64 window: the product librosa feeds numpy's FFT.
            re[i] = if (idx >= 0 && idx < signal.size) signal[idx].toDouble() * window[i] else 0.0
            im[i] = 0.0
        }
        fft.transform(re, im)
        for (b in spectrum.indices) {
            // complex64 storage, then np.abs in float32.
            val r = re[b].toFloat().toDouble()
            val m = im[b].toFloat().toDouble()
            var mag = sqrt(r * r + m * m).toFloat()
            if (params.power == 2.0) mag *= mag
            spectrum[b] = mag.toDouble()
        }
        filters.apply(spectrum, mel)
        for (k in 0 until params.nMels) {
            val energy = mel[k].toFloat() + offset32 // float32 matmul result, float32 add
            out[outOffset + k] = ln(energy.toDouble()).toFloat()
        }
    }

    /**
     * All frames of a signal, `log_mel(signal, params)`: no crop or pad. A signal shorter than
     * one frame is zero-padded to one frame, so every non-empty input gives at least one row.
     *
     * @throws IllegalArgumentException for an empty signal or NaN/inf samples.
     */
    fun logMel(signal: FloatArray): Features {
        require(signal.isNotEmpty()) { "logMel needs a non-empty signal" }
        require(signal.all { it.isFinite() }) { "logMel got a signal with NaN/inf samples" }
        val n = params.nFft
        var length = maxOf(signal.size, n)
        var shift = 0
        if (params.center) {
            shift = n / 2
            length += 2 * shift
        }
        val frames = 1 + (length - n) / params.hopLength
        val out = FloatArray(frames * params.nMels)
        for (t in 0 until frames) frame(signal, t * params.hopLength - shift, out, t * params.nMels)
        return Features(frames, params.nMels, out)
    }

    /**
     * Crop or pad to `params.frames` rows, `fix_length`: a longer input keeps the middle rows
     * (`crop = "center"`) or the first ones (`"start"`); a shorter one is padded at the end with
     * [FeatureParams.fillValue] (the features of digital silence).
     */
    fun fixLength(features: Features): Features {
        val target = params.frames
        val mels = features.nMels
        val out = FloatArray(target * mels)
        if (features.frames >= target) {
            val first = if (params.crop == "center") (features.frames - target) / 2 else 0
            features.values.copyInto(out, 0, first * mels, (first + target) * mels)
        } else {
            features.values.copyInto(out, 0)
            out.fill(params.fillValue, features.values.size, out.size)
        }
        return Features(target, mels, out)
    }

    /** One model window of features of a whole utterance: `fixLength(logMel(signal))`. */
    fun features(signal: FloatArray): Features = fixLength(logMel(signal))
}
