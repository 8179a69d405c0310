package org.kerashrf.ser.core

/**
 * Posterior smoothing over windows: Kotlin twin of `keras_hrf.stream.smooth_posteriors`.
 *
 * - [Mode.MEDIAN]: per class, the median of windows `[j - smooth / 2, j + (smooth - 1) / 2]`
 *   (clipped at the ends). Centred, so it needs future windows: for offline timelines (a file).
 * - [Mode.EMA]: `s_0 = p_0`, `s_j = alpha p_j + (1 - alpha) s_{j-1}`, `alpha = 2 / (smooth + 1)`.
 *   Causal: what the live view and the firmware (`audio_main.cc`) use; [Ema] is its incremental
 *   form and gives the same numbers as the batch form.
 *
 * `smooth = 1` changes nothing. Rows are renormalised to sum to 1 (a median of probabilities need
 * not). Computed in double, returned as float, as the Python version.
 */
object PosteriorSmoother {
    /** The smoothing kind. */
    enum class Mode(val pythonName: String) {
        MEDIAN("median"),
        EMA("ema"),
        ;

        companion object {
            /** The mode named as in Python (`"median"` or `"ema"`). */
            fun of(name: String): Mode = entries.firstOrNull { it.pythonName == name }
                ?: throw IllegalArgumentException("smoothing must be 'median' or 'ema', got '$name'")
        }
    }

    /** Smooths `posteriors[window][class]` over about [smooth] windows (see the class comment). */
    fun smooth(posteriors: List<FloatArray>, smooth: Int, mode: Mode): List<FloatArray> {
        require(smooth >= 1) { "smooth must be a whole number of windows >= 1, got $smooth" }
        val w = posteriors.size
        if (w == 0) return emptyList()
        val c = posteriors[0].size
        require(posteriors.all { it.size == c }) { "posterior rows differ in length" }
        val p = Array(w) { j -> DoubleArray(c) { posteriors[j][it].toDouble() } }
        val out: Array<DoubleArray> = when {
            smooth == 1 -> p
            mode == Mode.MEDIAN -> {
                val before = smooth / 2
                val after = (smooth - 1) / 2
                Array(w) { j ->
                    val lo = maxOf(0, j - before)
                    val hi = minOf(w - 1, j + after)
                    DoubleArray(c) { k -> median(DoubleArray(hi - lo + 1) { p[lo + it][k] }) }
                }
            }
            else -> {
                val alpha = 2.0 / (smooth + 1.0)
                val s = Array(w) { DoubleArray(c) }
                p[0].copyInto(s[0])
                for (j in 1 until w) for (k in 0 until c) s[j][k] = alpha * p[j][k] + (1.0 - alpha) * s[j - 1][k]
                s
            }
        }
        return out.map { normalized(it) }
    }

    /**
     * The causal EMA, one window at a time (the live view): [update] with each window's
     * posteriors returns the smoothed, renormalised row; equal to [smooth] with [Mode.EMA].
     */
    class Ema(val smooth: Int) {
        private val alpha = 2.0 / (smooth + 1.0)
        private var state: DoubleArray? = null

        init {
            require(smooth >= 1) { "smooth must be a whole number of windows >= 1, got $smooth" }
        }

        /** Adds one window; returns its smoothed posteriors. */
        fun update(posteriors: FloatArray): FloatArray {
            val prev = state
            val next = if (prev == null || smooth == 1) {
                DoubleArray(posteriors.size) { posteriors[it].toDouble() }
            } else {
                require(prev.size == posteriors.size) { "posterior rows differ in length" }
                DoubleArray(prev.size) { alpha * posteriors[it] + (1.0 - alpha) * prev[it] }
            }
            state = next
            return normalized(next)
        }

        /** Forgets the past (a new recording). */
        fun reset() {
            state = null
        }
    }

    private fun normalized(row: DoubleArray): FloatArray {
        val total = row.sum()
        val div = if (total > 0) total else 1.0
        return FloatArray(row.size) { (row[it] / div).toFloat() }
    }

    private fun median(values: DoubleArray): Double {
        values.sort()
        val n = values.size
        return if (n % 2 == 1) values[n / 2] else (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/**
 * One stretch of a timeline: twin of `keras_hrf.stream.Segment`.
 *
 * @property start Start, seconds from the beginning of the recording.
 * @property end End, seconds.
 * @property labelIndex Index of [label] in the model's labels.
 * @property confidence Mean smoothed posterior of [label] over the segment's windows.
 * @property windows How many windows the segment holds.
 */
data class Segment(
    val start: Double,
    val end: Double,
    val label: String,
    val labelIndex: Int,
    val confidence: Float,
    val windows: Int,
)

/** Merging windows into segments: twin of `keras_hrf.stream.segments_from`. */
object Timeline {
    /**
     * Consecutive windows with the same arg max become one [Segment]. A boundary lies half-way
     * between the centres of the last window of one segment and the first of the next; the first
     * segment starts at 0 and the last ends at [duration].
     */
    fun segments(smoothed: List<FloatArray>, centres: DoubleArray, labels: List<String>, duration: Double): List<Segment> {
        if (smoothed.isEmpty()) return emptyList()
        require(centres.size == smoothed.size) { "${centres.size} centres for ${smoothed.size} windows" }
        val best = IntArray(smoothed.size) { Decision.argmax(smoothed[it]) }
        val out = ArrayList<Segment>()
        var first = 0
        for (j in 1..best.size) {
            if (j < best.size && best[j] == best[first]) continue
            val start = if (first == 0) 0.0 else 0.5 * (centres[first - 1] + centres[first])
            val end = if (j == best.size) duration else 0.5 * (centres[j - 1] + centres[j])
            val k = best[first]
            var sum = 0.0
            for (t in first until j) sum += smoothed[t][k]
            out.add(Segment(start, end, labels[k], k, (sum / (j - first)).toFloat(), j - first))
            first = j
        }
        return out
    }
}
