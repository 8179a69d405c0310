package org.kerashrf.ser.app

import android.Manifest
import android.annotation.SuppressLint
import android.content.Context
import android.content.pm.PackageManager
import android.media.AudioFormat
import android.media.AudioRecord
import android.media.MediaRecorder
import android.os.Handler
import android.os.Looper
import androidx.core.content.ContextCompat
import org.kerashrf.ser.core.InferenceEngine
import org.kerashrf.ser.core.StreamingClassifier
import org.kerashrf.ser.core.WindowResult

/**
 * Microphone -> [StreamingClassifier] on a background thread; results are posted to the main
 * thread.
 *
 * The thread owns everything it touches (AudioRecord, the LiteRT engine, the classifier), so
 * nothing is shared across threads but the [running] flag. Audio is read in blocks of
 * [BLOCK_HOPS] hops (40 ms); every block adds log-Mel rows, and a window is classified every
 * `hopSeconds` once one window of audio has arrived.
 */
class LiveRecognizer(
    private val context: Context,
    private val assets: ModelAssets,
    private val listener: Listener,
    private val hopSeconds: Double = HOP_SECONDS,
    private val smooth: Int = SMOOTH_WINDOWS,
) {
    /** Receives results on the main thread. */
    interface Listener {
        /** A classified window; [blockNanos] is the front-end + inference time of its audio block. */
        fun onWindow(result: WindowResult, blockNanos: Long)

        /** Recording or inference failed; recognition has stopped. */
        fun onError(message: String)

        /** The audio thread ended (after [stop] or an error). */
        fun onStopped()
    }

    private val main = Handler(Looper.getMainLooper())

    @Volatile
    private var running = false
    private var thread: Thread? = null

    /** Whether the audio thread is running. */
    val isRunning: Boolean get() = running

    /** Starts recording (the caller has obtained RECORD_AUDIO). */
    fun start() {
        if (running) return
        running = true
        thread = Thread(::loop, "ser-audio").also { it.start() }
    }

    /** Stops recording and waits briefly for the thread to end. */
    fun stop() {
        running = false
        thread?.join(2000)
        thread = null
    }

    @SuppressLint("MissingPermission") // checked right below; lint cannot follow the early throw
    private fun loop() {
        var record: AudioRecord? = null
        var engine: InferenceEngine? = null
        try {
            if (ContextCompat.checkSelfPermission(context, Manifest.permission.RECORD_AUDIO) != PackageManager.PERMISSION_GRANTED) {
                throw SecurityException("no microphone permission")
            }
            val meta = assets.meta
            val rate = meta.featureParams.sampleRate
            val minBytes = AudioRecord.getMinBufferSize(rate, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT)
            check(minBytes > 0) { "this device cannot record $rate Hz mono 16-bit audio (getMinBufferSize = $minBytes)" }
            // Half a second of buffering (16-bit: 2 bytes a sample) rides out a slow inference.
            val bufferBytes = maxOf(minBytes, rate)
            // VOICE_RECOGNITION: no automatic gain control or noise suppression on most devices,
            // closer to the recordings the model was trained on than the processed MIC source.
            record = AudioRecord(
                MediaRecorder.AudioSource.VOICE_RECOGNITION, rate, AudioFormat.CHANNEL_IN_MONO,
                AudioFormat.ENCODING_PCM_16BIT, bufferBytes,
            )
            check(record.state == AudioRecord.STATE_INITIALIZED) { "the microphone could not be opened (is another app using it?)" }
            engine = assets.newEngine()
            val classifier = StreamingClassifier(meta, engine, hopSeconds, smooth)
            val block = ShortArray(meta.featureParams.hopLength * BLOCK_HOPS)
            record.startRecording()
            while (running) {
                val n = record.read(block, 0, block.size)
                check(n >= 0) { "reading the microphone failed (AudioRecord.read returned $n)" }
                val t0 = System.nanoTime()
                val windows = classifier.acceptPcm16(block, 0, n)
                val nanos = System.nanoTime() - t0
                for (w in windows) main.post { listener.onWindow(w, nanos) }
            }
        } catch (e: Exception) {
            val message = e.message ?: e.toString()
            main.post { listener.onError(message) }
        } finally {
            record?.let {
                if (it.recordingState == AudioRecord.RECORDSTATE_RECORDING) it.stop()
                it.release()
            }
            engine?.close()
            running = false
            main.post { listener.onStopped() }
        }
    }

    companion object {
        /** Seconds between decisions. */
        const val HOP_SECONDS = 0.5

        /** Windows of causal (EMA) smoothing of the live decision. */
        const val SMOOTH_WINDOWS = 3

        /** Hops of audio per AudioRecord read. */
        const val BLOCK_HOPS = 4
    }
}
