package org.kerashrf.ser.app

import android.Manifest
import android.content.pm.PackageManager
import android.content.res.ColorStateList
import android.net.Uri
import android.os.Bundle
import android.provider.OpenableColumns
import android.view.Gravity
import android.view.WindowManager
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ProgressBar
import android.widget.TextView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.core.content.ContextCompat
import org.kerashrf.ser.core.Decision
import org.kerashrf.ser.core.EmotionClassifier
import org.kerashrf.ser.core.WavReader
import org.kerashrf.ser.core.WindowResult
import org.tensorflow.lite.TensorFlowLite
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * The demo screen: the current emotion with per-class confidence bars, a scrolling timeline and
 * the latency, from the microphone ("Listen") or from a picked WAV file.
 *
 * All audio and model work happens off the main thread: live recognition on [LiveRecognizer]'s
 * thread, files on [fileExecutor]; each has its own LiteRT engine.
 */
class MainActivity : AppCompatActivity(), LiveRecognizer.Listener {
    private var model: ModelAssets? = null
    private var live: LiveRecognizer? = null
    private val fileExecutor: ExecutorService = Executors.newSingleThreadExecutor()

    private lateinit var modelInfo: TextView
    private lateinit var emotion: TextView
    private lateinit var confidence: TextView
    private lateinit var latency: TextView
    private lateinit var status: TextView
    private lateinit var timeline: TimelineView
    private lateinit var listenButton: Button
    private lateinit var fileButton: Button
    private val bars = ArrayList<Pair<ProgressBar, TextView>>()
    private var liveFailed = false

    private val requestMic = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startListening() else status.setText(R.string.mic_denied)
    }

    private val pickWav = registerForActivityResult(ActivityResultContracts.OpenDocument()) { uri ->
        if (uri != null) classifyFile(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        modelInfo = findViewById(R.id.model_info)
        emotion = findViewById(R.id.emotion)
        confidence = findViewById(R.id.confidence)
        latency = findViewById(R.id.latency)
        status = findViewById(R.id.status)
        timeline = findViewById(R.id.timeline)
        listenButton = findViewById(R.id.listen)
        fileButton = findViewById(R.id.classify_file)

        val loaded = try {
            ModelAssets.load(this)
        } catch (e: Exception) {
            // No usable model: say why and how to fix it instead of crashing.
            status.text = e.message ?: e.toString()
            listenButton.isEnabled = false
            fileButton.isEnabled = false
            return
        }
        model = loaded
        val meta = loaded.meta
        modelInfo.text = getString(
            R.string.model_info, meta.labels.size, meta.frames, meta.nMels,
            meta.featureParams.windowSamples.toDouble() / meta.featureParams.sampleRate, TensorFlowLite.runtimeVersion(),
        )
        buildBars(meta.labels)
        timeline.setLabels(meta.labels)
        live = LiveRecognizer(applicationContext, loaded, this)

        listenButton.setOnClickListener {
            if (live?.isRunning == true) {
                stopListening()
            } else if (ContextCompat.checkSelfPermission(this, Manifest.permission.RECORD_AUDIO) == PackageManager.PERMISSION_GRANTED) {
                startListening()
            } else {
                status.setText(R.string.mic_rationale)
                requestMic.launch(Manifest.permission.RECORD_AUDIO)
            }
        }
        fileButton.setOnClickListener { pickWav.launch(arrayOf("audio/*")) }
    }

    override fun onStop() {
        super.onStop()
        // Never record in the background.
        if (live?.isRunning == true) stopListening()
    }

    override fun onDestroy() {
        super.onDestroy()
        live?.stop()
        fileExecutor.shutdownNow()
    }

    private fun buildBars(labels: List<String>) {
        val container = findViewById<LinearLayout>(R.id.bars)
        val dp = resources.displayMetrics.density
        labels.forEachIndexed { index, label ->
            val row = LinearLayout(this).apply {
                orientation = LinearLayout.HORIZONTAL
                setGravity(Gravity.CENTER_VERTICAL)
                setPadding(0, (4 * dp).toInt(), 0, (4 * dp).toInt())
            }
            val name = TextView(this).apply { text = label }
            val bar = ProgressBar(this, null, android.R.attr.progressBarStyleHorizontal).apply {
                max = 1000
                progressTintList = ColorStateList.valueOf(TimelineView.colorOf(index))
            }
            val percent = TextView(this).apply { gravity = Gravity.END }
            row.addView(name, LinearLayout.LayoutParams((96 * dp).toInt(), LinearLayout.LayoutParams.WRAP_CONTENT))
            row.addView(bar, LinearLayout.LayoutParams(0, LinearLayout.LayoutParams.WRAP_CONTENT, 1f))
            row.addView(percent, LinearLayout.LayoutParams((56 * dp).toInt(), LinearLayout.LayoutParams.WRAP_CONTENT))
            container.addView(row)
            bars.add(bar to percent)
        }
    }

    private fun show(decision: Decision) {
        emotion.text = decision.label
        emotion.setTextColor(TimelineView.colorOf(decision.index))
        confidence.text = getString(R.string.confidence, 100f * decision.confidence)
        decision.probabilities.forEachIndexed { k, p ->
            bars[k].first.progress = (1000 * p).toInt()
            bars[k].second.text = getString(R.string.percent, 100f * p)
        }
    }

    // ------------------------------------------------------------------------- live

    private fun startListening() {
        val recognizer = live ?: return
        val p = model?.meta?.featureParams ?: return
        timeline.clear()
        liveFailed = false
        recognizer.start()
        listenButton.setText(R.string.stop)
        fileButton.isEnabled = false
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        status.text = getString(R.string.waiting_first_window, p.windowSamples.toDouble() / p.sampleRate)
    }

    private fun stopListening() {
        live?.stop()
    }

    override fun onWindow(result: WindowResult, blockNanos: Long) {
        show(result.smoothed)
        timeline.append(result.smoothed.index, result.smoothed.confidence)
        latency.text = getString(R.string.latency_live, result.inferenceNanos / 1e6, blockNanos / 1e6)
        val p = model?.meta?.featureParams ?: return
        status.text = getString(
            R.string.listening, LiveRecognizer.HOP_SECONDS, p.windowSamples.toDouble() / p.sampleRate, LiveRecognizer.SMOOTH_WINDOWS,
        )
    }

    override fun onError(message: String) {
        liveFailed = true
        status.text = message
    }

    override fun onStopped() {
        listenButton.setText(R.string.listen)
        fileButton.isEnabled = model != null
        window.clearFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        if (!liveFailed) status.setText(R.string.stopped)
    }

    // ------------------------------------------------------------------------ files

    private fun displayName(uri: Uri): String =
        contentResolver.query(uri, arrayOf(OpenableColumns.DISPLAY_NAME), null, null, null)?.use { c ->
            if (c.moveToFirst()) c.getString(0) else null
        } ?: uri.lastPathSegment ?: "WAV file"

    private fun classifyFile(uri: Uri) {
        val loaded = model ?: return
        val name = displayName(uri)
        status.text = getString(R.string.classifying, name)
        listenButton.isEnabled = false
        fileButton.isEnabled = false
        fileExecutor.execute {
            try {
                val bytes = contentResolver.openInputStream(uri)?.use { it.readBytes() }
                    ?: throw IllegalStateException("$name: cannot be opened")
                val audio = WavReader.read(bytes, loaded.meta.featureParams.sampleRate, name)
                val (utterance, recording) = loaded.newEngine().use { engine ->
                    val classifier = EmotionClassifier(loaded.meta, engine)
                    // The decision as in training (the utterance's central window), and the
                    // timeline of sliding windows as `keras-hrf stream` computes it.
                    classifier.classifyUtterance(audio.samples) to
                        classifier.classifyRecording(audio.samples, LiveRecognizer.HOP_SECONDS, LiveRecognizer.SMOOTH_WINDOWS)
                }
                runOnUiThread {
                    show(utterance.decision)
                    timeline.showSegments(recording.segments, recording.duration)
                    latency.text = getString(R.string.latency_file, utterance.frontEndNanos / 1e6, utterance.inferenceNanos / 1e6)
                    status.text = getString(
                        R.string.file_result, name, audio.duration, recording.windows.size, LiveRecognizer.SMOOTH_WINDOWS,
                    )
                }
            } catch (e: Exception) {
                val message = e.message ?: e.toString()
                runOnUiThread { status.text = message }
            } finally {
                runOnUiThread {
                    listenButton.isEnabled = true
                    fileButton.isEnabled = true
                }
            }
        }
    }
}
