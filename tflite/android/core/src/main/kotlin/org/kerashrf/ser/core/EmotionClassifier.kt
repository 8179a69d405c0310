package org.kerashrf.ser.core

/**
 * One utterance classified the way the model was trained and evaluated: the whole signal's
 * log-Mel cropped/padded to one window (`features_of` in Python).
 *
 * @property features The fixed-length float features `[frames][n_mels]`.
 * @property input The int8 model input.
 * @property output The int8 model output.
 * @property decision Label and per-class probabilities.
 * @property frontEndNanos Time of the front-end and quantization.
 * @property inferenceNanos Time of [InferenceEngine.run].
 */
class UtteranceResult(
    val features: Features,
    val input: ByteArray,
    val output: ByteArray,
    val decision: Decision,
    val frontEndNanos: Long,
    val inferenceNanos: Long,
)

/**
 * The emotion timeline of a whole recording: twin of `keras_hrf.stream.StreamResult`.
 *
 * @property windows The classified windows, in order.
 * @property centres Centre of each window, seconds.
 * @property posteriors Softmax of each window's dequantized output.
 * @property smoothed [posteriors] after smoothing.
 * @property segments Consecutive windows with the same smoothed arg max.
 * @property duration Length of the recording, seconds.
 * @property windowSeconds Length of one window, seconds.
 * @property hopSeconds Step between windows, seconds.
 */
class RecordingResult(
    val windows: List<WindowResult>,
    val centres: DoubleArray,
    val posteriors: List<FloatArray>,
    val smoothed: List<FloatArray>,
    val segments: List<Segment>,
    val duration: Double,
    val windowSeconds: Double,
    val hopSeconds: Double,
)

/**
 * Offline classification of a signal (e.g. a picked WAV file), on any [InferenceEngine].
 *
 * Holds a front-end with scratch buffers: use one instance per thread.
 */
class EmotionClassifier(val meta: ModelMeta, private val engine: InferenceEngine) {
    private val frontEnd = LogMelFrontEnd(meta.featureParams)
    private val quantizer = InputQuantizer(meta)

    init {
        require(engine.inputSize == meta.frames * meta.nMels) {
            "the model takes ${engine.inputSize} input values, model_meta.json says ${meta.frames} x ${meta.nMels}"
        }
        require(engine.outputSize == meta.labels.size) {
            "the model has ${engine.outputSize} outputs for ${meta.labels.size} labels"
        }
    }

    /** Classifies [signal] (float samples at the model's rate) as one utterance. */
    fun classifyUtterance(signal: FloatArray): UtteranceResult {
        val t0 = System.nanoTime()
        val features = frontEnd.features(signal)
        val input = quantizer.quantize(features)
        val t1 = System.nanoTime()
        val output = ByteArray(engine.outputSize)
        engine.run(input, output)
        val t2 = System.nanoTime()
        return UtteranceResult(features, input, output, Decision.fromInt8(output, meta), t1 - t0, t2 - t1)
    }

    /**
     * The timeline of [signal]: sliding windows every [hopSeconds] ([StreamingClassifier]), then
     * posteriors smoothed over [smooth] windows with [mode] (the centred median by default, as
     * the `keras-hrf stream` command) and merged into segments.
     */
    fun classifyRecording(
        signal: FloatArray,
        hopSeconds: Double = 0.5,
        smooth: Int = 3,
        mode: PosteriorSmoother.Mode = PosteriorSmoother.Mode.MEDIAN,
    ): RecordingResult {
        require(signal.isNotEmpty()) { "cannot classify an empty recording" }
        require(signal.all { it.isFinite() }) { "the recording has NaN/inf samples" }
        val stream = StreamingClassifier(meta, engine, hopSeconds, smooth)
        val windows = stream.accept(signal) + stream.finish()
        val posteriors = windows.map { it.raw.probabilities }
        val smoothed = PosteriorSmoother.smooth(posteriors, smooth, mode)
        val centres = DoubleArray(windows.size) { windows[it].centreSeconds }
        val duration = signal.size.toDouble() / meta.featureParams.sampleRate
        return RecordingResult(
            windows = windows,
            centres = centres,
            posteriors = posteriors,
            smoothed = smoothed,
            segments = Timeline.segments(smoothed, centres, meta.labels, duration),
            duration = duration,
            windowSeconds = stream.windowSeconds,
            hopSeconds = stream.hopSecondsActual,
        )
    }
}
