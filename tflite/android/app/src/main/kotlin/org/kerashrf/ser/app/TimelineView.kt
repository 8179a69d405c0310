package org.kerashrf.ser.app

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.util.AttributeSet
import android.util.TypedValue
import android.view.View
import org.kerashrf.ser.core.Segment

/**
 * The emotion timeline: live, a strip of the latest [maxWindows] decisions scrolling left (one
 * block per window, opacity = confidence); for a file, its segments laid out over its duration.
 */
class TimelineView @JvmOverloads constructor(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private val live = ArrayDeque<Pair<Int, Float>>()
    private var segments: List<Segment> = emptyList()
    private var duration = 0.0
    private var labels: List<String> = emptyList()
    private val fill = Paint(Paint.ANTI_ALIAS_FLAG)
    private val text = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = Color.WHITE
        textSize = TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_SP, 12f, resources.displayMetrics)
    }

    /** Windows shown in live mode (30 s at the default 0.5 s hop). */
    var maxWindows = 60

    /** Sets the class names (their order gives the colours). */
    fun setLabels(labels: List<String>) {
        this.labels = labels
        clear()
    }

    /** Appends one live decision. */
    fun append(labelIndex: Int, confidence: Float) {
        segments = emptyList()
        live.addLast(labelIndex to confidence)
        while (live.size > maxWindows) live.removeFirst()
        invalidate()
    }

    /** Shows a file's timeline. */
    fun showSegments(segments: List<Segment>, duration: Double) {
        live.clear()
        this.segments = segments
        this.duration = duration
        invalidate()
    }

    /** Empties the view. */
    fun clear() {
        live.clear()
        segments = emptyList()
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val w = width.toFloat()
        val h = height.toFloat()
        fill.color = Color.argb(40, 128, 128, 128)
        canvas.drawRect(0f, 0f, w, h, fill)
        if (segments.isNotEmpty() && duration > 0) {
            for (s in segments) {
                val left = (s.start / duration * w).toFloat()
                val right = (s.end / duration * w).toFloat()
                fill.color = colorOf(s.labelIndex)
                fill.alpha = (80 + 175 * s.confidence).toInt().coerceIn(0, 255)
                canvas.drawRect(left, 0f, right, h, fill)
                if (right - left > text.measureText(s.label) + 8) canvas.drawText(s.label, left + 4, h / 2 + text.textSize / 3, text)
            }
            return
        }
        val block = w / maxWindows
        live.forEachIndexed { i, (index, confidence) ->
            val right = w - (live.size - 1 - i) * block
            fill.color = colorOf(index)
            fill.alpha = (80 + 175 * confidence).toInt().coerceIn(0, 255)
            canvas.drawRect(right - block + 1, 0f, right, h, fill)
        }
    }

    companion object {
        private val PALETTE = intArrayOf(
            0xFFE53935.toInt(), 0xFF1E88E5.toInt(), 0xFF8E24AA.toInt(), 0xFF43A047.toInt(),
            0xFFFB8C00.toInt(), 0xFF00ACC1.toInt(), 0xFF6D4C41.toInt(), 0xFF757575.toInt(),
            0xFFC0CA33.toInt(), 0xFFD81B60.toInt(),
        )

        /** The colour of class [index] (bars and timeline share it). */
        fun colorOf(index: Int): Int = PALETTE[index % PALETTE.size]
    }
}
