package org.kerashrf.ser.core

/**
 * One classified window of a stream.
 *
 * @property index Window number `j`, from 0.
 * @property startSample First sample of the window: `j * hopRows * hop_length`.
 * @property centreSeconds Centre of the window, the time it stands for (as `keras_hrf.stream`).
 * @property input The int8 model input of the window (`frames * n_mels`).
 * @property output The model's int8 output.
 * @property raw Decision from this window alone.
 * @property smoothed Decision from the causally smoothed posteriors (EMA), what the live view shows.
 * @property inferenceNanos Time spent in [InferenceEngine.run].
 */
class WindowResult(
    val index: Int,
    val startSample: Long,
    val centreSeconds: Double,
    val input: ByteArray,
    val output: ByteArray,
    val raw: Decision,
    val smoothed: Decision,
    val inferenceNanos: Long,
)

/**
 * Streaming emotion recognition: audio in, one classified window every hop out.
 *
 * The semantics of `keras_hrf.stream.classify_stream` (and of the firmware): log-Mel rows are
 * computed frame by frame as samples arrive (frame `i` covers samples `[i * hop_length,
 * i * hop_length + n_fft)`) and quantized to int8 row by row (exact: the normaliser and the
 * quantization work per value); window `j` is rows `[j * hopRows, j * hopRows + frames)`;
 * `hopRows = round(hopSeconds * sample_rate / hop_length)` (at least 1; Python's round, half to
 * even). Samples after the last full window are not classified until more arrive. A stream
 * shorter than one window gives one window at [finish], padded with the rows of digital silence,
 * like the training features.
 *
 * Edge cases: a partial frame (fewer than `n_fft` samples pending) waits in the ring buffer;
 * silence gives the log floor, a valid input; samples can be fed in blocks of any size.
 *
 * Not thread-safe: feed it from one thread (the app's audio thread).
 */
class StreamingClassifier(
    val meta: ModelMeta,
    private val engine: InferenceEngine,
    hopSeconds: Double = 0.5,
    smooth: Int = 3,
) {
    /** The front-end parameters. */
    val params: FeatureParams = meta.featureParams

    /** Rows between consecutive windows. */
    val hopRows: Int

    private val frontEnd = LogMelFrontEnd(params)
    private val quantizer = InputQuantizer(meta)
    private val frames = params.frames
    private val nMels = params.nMels
    private val ring = AudioRingBuffer(params.nFft + 64 * params.hopLength)
    private val frame = FloatArray(params.nFft)
    private val rowFloat = FloatArray(nMels)
    private val rows = ByteArray(frames * nMels) // ring of the latest `frames` int8 rows
    private val ema = PosteriorSmoother.Ema(smooth)
    private var pendingSkip = 0
    private var finished = false

    /** Samples received so far. */
    var samplesSeen: Long = 0
        private set

    /** Log-Mel rows computed so far. */
    var rowCount: Long = 0
        private set

    /** Windows classified so far. */
    var windowCount: Int = 0
        private set

    init {
        require(hopSeconds.isFinite() && hopSeconds > 0) { "hop must be a positive number of seconds, got $hopSeconds" }
        require(!params.center) {
            "streaming needs feature_params.center == false: a stream has no future samples to centre-pad with"
        }
        require(engine.inputSize == frames * nMels) {
            "the model takes ${engine.inputSize} input values, model_meta.json says $frames x $nMels"
        }
        require(engine.outputSize == meta.labels.size) {
            "the model has ${engine.outputSize} outputs for ${meta.labels.size} labels"
        }
        hopRows = maxOf(1, Math.rint(hopSeconds * params.sampleRate / params.hopLength).toInt())
    }

    /** Seconds spanned by one window. */
    val windowSeconds: Double get() = params.windowSamples.toDouble() / params.sampleRate

    /** Seconds between windows (a whole number of frames). */
    val hopSecondsActual: Double get() = hopRows.toDouble() * params.hopLength / params.sampleRate

    /** Feeds float samples in [-1, 1]; returns the windows completed by them (often none). */
    fun accept(samples: FloatArray, offset: Int = 0, count: Int = samples.size - offset): List<WindowResult> {
        require(offset >= 0 && count >= 0 && offset + count <= samples.size) { "bad range $offset+$count of ${samples.size}" }
        check(!finished) { "finish() was called; call reset() to start a new stream" }
        val out = ArrayList<WindowResult>()
        var done = 0
        while (done < count) {
            val n = minOf(count - done, ring.free)
            ring.write(samples, offset + done, n)
            done += n
            samplesSeen += n
            drain(out)
        }
        return out
    }

    /** Feeds 16-bit PCM samples (`AudioRecord`'s ENCODING_PCM_16BIT), scaled by 1/32768. */
    fun acceptPcm16(samples: ShortArray, offset: Int = 0, count: Int = samples.size - offset): List<WindowResult> {
        require(offset >= 0 && count >= 0 && offset + count <= samples.size) { "bad range $offset+$count of ${samples.size}" }
        check(!finished) { "finish() was called; call reset() to start a new stream" }
        val out = ArrayList<WindowResult>()
        var done = 0
        while (done < count) {
            val n = minOf(count - done, ring.free)
            ring.writePcm16(samples, offset + done, n)
            done += n
            samplesSeen += n
            drain(out)
        }
        return out
    }

    /**
     * Ends the stream. If no window was classified yet (a stream shorter than one window), the
     * rows so far - at least one, a shorter-than-a-frame stream is zero-padded to one frame as
     * `log_mel` does - are padded with silence rows and classified as window 0. Returns that
     * window, or nothing (no samples at all, or windows were already produced).
     */
    fun finish(): List<WindowResult> {
        if (finished) return emptyList()
        finished = true
        if (samplesSeen == 0L || windowCount > 0) return emptyList()
        if (rowCount == 0L) {
            // Fewer than n_fft samples in total: one frame, zero-padded (ring.size < n_fft here).
            frame.fill(0f)
            ring.peek(frame, ring.size)
            pushRow(frame)
        }
        val silence = quantizer.constantRow(params.fillValue)
        while (rowCount < frames) {
            silence.copyInto(rows, ((rowCount % frames) * nMels).toInt())
            rowCount++
        }
        return listOf(classifyWindow())
    }

    /** Forgets everything: a new stream starts at sample 0. */
    fun reset() {
        ring.clear()
        ema.reset()
        pendingSkip = 0
        samplesSeen = 0
        rowCount = 0
        windowCount = 0
        finished = false
    }

    private fun drain(out: MutableList<WindowResult>) {
        while (true) {
            if (pendingSkip > 0) {
                val n = minOf(pendingSkip, ring.size)
                ring.skip(n)
                pendingSkip -= n
                if (pendingSkip > 0) return
            }
            if (ring.size < params.nFft) return
            ring.peek(frame, params.nFft)
            pushRow(frame)
            pendingSkip = params.hopLength
            if (rowCount >= frames && (rowCount - frames) % hopRows == 0L) out.add(classifyWindow())
        }
    }

    private fun pushRow(samples: FloatArray) {
        frontEnd.frame(samples, 0, rowFloat)
        quantizer.quantizeRow(rowFloat, 0, rows, ((rowCount % frames) * nMels).toInt())
        rowCount++
    }

    private fun classifyWindow(): WindowResult {
        // The ring's oldest row is the window's first: rows [rowCount - frames, rowCount).
        val input = ByteArray(frames * nMels)
        val oldest = ((rowCount % frames) * nMels).toInt()
        rows.copyInto(input, 0, oldest, rows.size)
        rows.copyInto(input, rows.size - oldest, 0, oldest)
        val output = ByteArray(engine.outputSize)
        val t0 = System.nanoTime()
        engine.run(input, output)
        val nanos = System.nanoTime() - t0
        val raw = Decision.fromInt8(output, meta)
        val smoothed = Decision.fromProbabilities(ema.update(raw.probabilities), meta.labels)
        val j = windowCount++
        val start = j.toLong() * hopRows * params.hopLength
        val centre = (start + params.windowSamples / 2.0) / params.sampleRate
        return WindowResult(j, start, centre, input, output, raw, smoothed, nanos)
    }
}
