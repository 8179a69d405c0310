package org.kerashrf.ser.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.util.Random
import kotlin.math.abs
import kotlin.math.sin

class AudioRingBufferTest {
    @Test
    fun fifoAcrossTheWrapAround() {
        val ring = AudioRingBuffer(8)
        ring.write(floatArrayOf(1f, 2f, 3f, 4f, 5f, 6f))
        ring.skip(5)
        ring.write(floatArrayOf(7f, 8f, 9f, 10f, 11f)) // wraps
        assertEquals(6, ring.size)
        assertEquals(5L, ring.consumed)
        val out = FloatArray(6)
        ring.peek(out, 6)
        assertArrayEquals(floatArrayOf(6f, 7f, 8f, 9f, 10f, 11f), out, 0f)
        ring.peek(out, 2, dstOffset = 4) // peek does not consume
        assertEquals(6f, out[4])
        assertEquals(6, ring.size)
    }

    @Test
    fun pcm16IsScaledLikeLibsndfile() {
        val ring = AudioRingBuffer(4)
        ring.writePcm16(shortArrayOf(Short.MIN_VALUE, -1, 0, Short.MAX_VALUE))
        val out = FloatArray(4)
        ring.peek(out, 4)
        assertArrayEquals(floatArrayOf(-1f, -1f / 32768f, 0f, 32767f / 32768f), out, 0f)
    }

    @Test
    fun overflowAndOverReadAreErrorsNotSilentLoss() {
        val ring = AudioRingBuffer(4)
        ring.write(FloatArray(3))
        assertThrows<IllegalStateException> { ring.write(FloatArray(2)) }
        assertEquals(3, ring.size) // nothing written
        assertThrows<IllegalArgumentException> { ring.peek(FloatArray(8), 4) }
        assertThrows<IllegalArgumentException> { ring.skip(4) }
        assertThrows<IllegalArgumentException> { ring.write(FloatArray(2), 1, 2) }
        assertThrows<IllegalArgumentException> { AudioRingBuffer(0) }
        ring.clear()
        assertEquals(0, ring.size)
        assertEquals(4, ring.free)
    }

    @Test
    fun emptyWritesAndZeroSkipsAreNoOps() {
        val ring = AudioRingBuffer(2)
        ring.write(FloatArray(0))
        ring.skip(0)
        ring.peek(FloatArray(0), 0)
        assertEquals(0, ring.size)
    }
}

class StreamingTest {
    private val meta = TestMeta.meta(frames = 20, nMels = 8)
    private val params = meta.featureParams

    private fun engine(respond: (ByteArray) -> ByteArray = { byteArrayOf(10, 20, 0) }) =
        RecordingEngine(meta.frames * meta.nMels, meta.labels.size, respond)

    private fun tone(n: Int, seed: Int = 0): FloatArray {
        val rng = Random(seed.toLong())
        return FloatArray(n) { (0.3 * sin(it * 0.07) + 0.05 * rng.nextGaussian()).toFloat() }
    }

    /** The windows of a whole signal computed in one batch: the reference for streaming. */
    private fun batchWindows(signal: FloatArray, hopRows: Int): List<ByteArray> {
        val fe = LogMelFrontEnd(params)
        val q = InputQuantizer(meta)
        val rows = q.quantize(fe.logMel(signal))
        val nRows = rows.size / meta.nMels
        val out = ArrayList<ByteArray>()
        var j = 0
        while (j * hopRows + meta.frames <= nRows) {
            out.add(rows.copyOfRange(j * hopRows * meta.nMels, (j * hopRows + meta.frames) * meta.nMels))
            j++
        }
        return out
    }

    @Test
    fun blockSizeDoesNotMatterAndWindowsEqualTheBatchComputation() {
        val signal = tone(16000)
        val reference = batchWindows(signal, hopRows = 5)
        assertEquals(1 + ((1 + (16000 - 512) / 160) - 20) / 5, reference.size)
        for (block in listOf(1, 7, 160, 511, 512, 4096, 16000)) {
            val e = engine()
            val s = StreamingClassifier(meta, e, hopSeconds = 0.05)
            assertEquals(5, s.hopRows)
            var pos = 0
            val windows = ArrayList<WindowResult>()
            while (pos < signal.size) {
                val n = minOf(block, signal.size - pos)
                windows += s.accept(signal, pos, n)
                pos += n
            }
            windows += s.finish()
            assertEquals("block $block", reference.size, windows.size)
            for (j in reference.indices) {
                assertArrayEquals("block $block window $j", reference[j], e.inputs[j])
                assertEquals(j.toLong() * 5 * 160, windows[j].startSample)
            }
        }
    }

    @Test
    fun partialFramesWaitForMoreSamples() {
        val e = engine()
        val s = StreamingClassifier(meta, e, hopSeconds = 0.01)
        s.accept(FloatArray(511))
        assertEquals(0L, s.rowCount) // one sample short of a frame
        s.accept(FloatArray(1))
        assertEquals(1L, s.rowCount)
        s.accept(FloatArray(159))
        assertEquals(1L, s.rowCount) // the next frame needs one more hop
        s.accept(FloatArray(1))
        assertEquals(2L, s.rowCount)
        assertEquals(0, e.inputs.size)
    }

    @Test
    fun pcm16EqualsFloatInput() {
        val pcm = ShortArray(8000) { (8000 * sin(it * 0.05)).toInt().toShort() }
        val asFloat = FloatArray(pcm.size) { pcm[it] / 32768f }
        val a = engine()
        val b = engine()
        StreamingClassifier(meta, a, 0.1).acceptPcm16(pcm)
        StreamingClassifier(meta, b, 0.1).accept(asFloat)
        assertTrue(a.inputs.isNotEmpty())
        assertEquals(a.inputs.size, b.inputs.size)
        for (j in a.inputs.indices) assertArrayEquals(b.inputs[j], a.inputs[j])
    }

    @Test
    fun silenceGivesTheQuantizedLogFloor() {
        val e = engine()
        val s = StreamingClassifier(meta, e, 0.1)
        val windows = s.accept(FloatArray(params.windowSamples))
        assertEquals(1, windows.size)
        val floor = InputQuantizer(meta).constantRow(params.floor)
        for (t in 0 until meta.frames) {
            assertArrayEquals(floor, e.inputs[0].copyOfRange(t * meta.nMels, (t + 1) * meta.nMels))
        }
    }

    @Test
    fun streamShorterThanOneWindowGivesOnePaddedWindowAtFinish() {
        val signal = tone(params.windowSamples / 2)
        val e = engine()
        val s = StreamingClassifier(meta, e, 0.5)
        assertEquals(0, s.accept(signal).size)
        val rows = s.rowCount.toInt()
        val windows = s.finish()
        assertEquals(1, windows.size)
        assertEquals(0.0 + params.windowSamples / 2.0 / params.sampleRate, windows[0].centreSeconds, 1e-12)
        // Equal to the fixed-length features of the whole signal (padded at the end).
        val q = InputQuantizer(meta)
        val fe = LogMelFrontEnd(params)
        val expected = q.quantize(fe.fixLength(fe.logMel(signal)))
        assertArrayEquals(expected, e.inputs[0])
        assertTrue(rows in 1 until meta.frames)
        assertEquals(0, s.finish().size) // finishing twice adds nothing
        assertThrows<IllegalStateException> { s.accept(FloatArray(1)) }
        s.reset()
        assertEquals(0L, s.samplesSeen)
        assertEquals(0, s.accept(FloatArray(10)).size)
    }

    @Test
    fun streamShorterThanOneFrameIsZeroPaddedToOneFrame() {
        val signal = tone(100)
        val e = engine()
        val s = StreamingClassifier(meta, e, 0.5)
        s.accept(signal)
        assertEquals(0L, s.rowCount)
        assertEquals(1, s.finish().size)
        val fe = LogMelFrontEnd(params)
        val expected = InputQuantizer(meta).quantize(fe.fixLength(fe.logMel(signal)))
        assertArrayEquals(expected, e.inputs[0])
    }

    @Test
    fun emptyStreamGivesNoWindow() {
        val s = StreamingClassifier(meta, engine(), 0.5)
        assertEquals(0, s.accept(FloatArray(0)).size)
        assertEquals(0, s.finish().size)
    }

    @Test
    fun hopIsRoundedToWholeFramesLikePython() {
        // round() in Python rounds half to even: 2.5 frames -> 2, 3.5 -> 4.
        assertEquals(2, StreamingClassifier(meta, engine(), 0.025).hopRows)
        assertEquals(4, StreamingClassifier(meta, engine(), 0.035).hopRows)
        assertEquals(4, StreamingClassifier(meta, engine(), 0.045).hopRows)
        assertEquals(1, StreamingClassifier(meta, engine(), 0.001).hopRows)
        assertThrows<IllegalArgumentException> { StreamingClassifier(meta, engine(), 0.0) }
        assertThrows<IllegalArgumentException> { StreamingClassifier(meta, RecordingEngine(5, 3)) }
    }

    @Test
    fun liveDecisionIsTheCausalEmaOfTheRawPosteriors() {
        var call = 0
        val outputs = listOf(byteArrayOf(40, 10, 10), byteArrayOf(10, 40, 10), byteArrayOf(10, 40, 10))
        val s = StreamingClassifier(meta, engine { outputs[minOf(call++, 2)] }, 0.05, smooth = 3)
        val windows = s.accept(tone(params.windowSamples + 2 * 5 * params.hopLength))
        assertEquals(3, windows.size)
        val smoothed = PosteriorSmoother.smooth(windows.map { it.raw.probabilities }, 3, PosteriorSmoother.Mode.EMA)
        for (j in windows.indices) assertArrayEquals(smoothed[j], windows[j].smoothed.probabilities, 1e-7f)
        assertEquals("angry", windows[0].smoothed.label)
        assertEquals("sad", windows[2].smoothed.label)
    }

    @Test
    fun streamWindowsMatchPythonsStreamSemantics() {
        // Python's classify_stream for the same files: number of windows and their centres, and
        // each window's int8 rows against Python's row-wise quantized log-Mel.
        val meta = Golden.meta
        var differing = 0
        var total = 0
        for (f in Golden.list(Golden.index, "files")) {
            val name = Golden.str(f, "name")
            val st = Golden.obj(f, "stream")
            val signal = WavReader.read(Golden.file(Golden.str(f, "wav")).readBytes()).samples
            val e = RecordingEngine(meta.frames * meta.nMels, meta.labels.size)
            val r = EmotionClassifier(meta, e).classifyRecording(
                signal, Golden.num(st, "hop"), Golden.int(st, "smooth"), PosteriorSmoother.Mode.of(Golden.str(st, "smoothing")),
            )
            val centres = Golden.doubles(st["centres"])
            assertEquals(name, centres.size, r.windows.size)
            for (j in centres.indices) assertEquals("$name centre $j", centres[j], r.centres[j], 1e-9)
            assertEquals(name, Golden.num(st, "window_seconds"), r.windowSeconds, 1e-12)
            assertEquals(name, Golden.num(st, "hop_seconds"), r.hopSeconds, 1e-12)
            assertEquals(name, Golden.num(st, "duration"), r.duration, 1e-12)
            val rows = Golden.i8(Golden.str(st, "rows"))
            val hopRows = Golden.int(st, "hop_rows")
            val size = meta.frames * meta.nMels
            for (j in e.inputs.indices) {
                val expected = rows.copyOfRange(j * hopRows * meta.nMels, j * hopRows * meta.nMels + size)
                for (i in 0 until size) {
                    val d = abs(e.inputs[j][i] - expected[i])
                    assertTrue("$name window $j value $i differs by $d steps", d <= 1)
                    if (d != 0) differing++
                }
                total += size
            }
        }
        Golden.metric("stream_int8_window_mismatches", "$differing/$total")
        assertTrue("$differing of $total", differing * 1000 < total)
    }
}

inline fun <reified T : Throwable> assertThrows(block: () -> Unit): T {
    try {
        block()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.java.simpleName}, got $e", e)
    }
    throw AssertionError("expected ${T::class.java.simpleName}, nothing was thrown")
}
