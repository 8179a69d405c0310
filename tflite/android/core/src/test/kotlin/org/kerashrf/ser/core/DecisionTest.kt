package org.kerashrf.ser.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

class QuantizationTest {
    @Test
    fun roundsHalfAwayFromZeroAndClamps() {
        val q = Int8Quantizer(0.5, 0)
        // x / 0.5 = 0.5, 1.5, 2.5, -0.5, -1.5: std::round gives 1, 2, 3, -1, -2 (rint would not).
        assertEquals(1, q.quantize(0.25f).toInt())
        assertEquals(2, q.quantize(0.75f).toInt())
        assertEquals(3, q.quantize(1.25f).toInt())
        assertEquals(-1, q.quantize(-0.25f).toInt())
        assertEquals(-2, q.quantize(-0.75f).toInt())
        assertEquals(0, q.quantize(0.2499f).toInt())
        assertEquals(127, q.quantize(1000f).toInt())
        assertEquals(-128, q.quantize(-1000f).toInt())
        assertEquals(127, Int8Quantizer(1.0, 5).quantize(122.5f).toInt())
        assertThrows<IllegalArgumentException> { q.quantize(Float.NaN) }
        assertThrows<IllegalArgumentException> { Int8Quantizer(0.0, 0) }
        assertThrows<IllegalArgumentException> { Int8Quantizer(1.0, 200) }
    }

    @Test
    fun equalsPythonsQuantizeOnTies() {
        val c = Golden.obj(Golden.index, "quantize_cases")
        val q = Int8Quantizer(Golden.num(c, "scale"), Golden.int(c, "zero_point"))
        val x = Golden.doubles(c["x"])
        val expected = Golden.doubles(c["q"])
        for (i in x.indices) assertEquals("x=${x[i]}", expected[i].toInt(), q.quantize(x[i].toFloat()).toInt())
    }

    @Test
    fun dequantizeAndSoftmax() {
        val q = Int8Quantizer(0.125, 10)
        assertEquals(-1.25f, q.dequantize(0), 0f)
        val p = Decision.softmax(doubleArrayOf(1000.0, 1000.0, -1000.0)) // no overflow
        assertArrayEquals(floatArrayOf(0.5f, 0.5f, 0f), p, 1e-7f)
    }
}

class DecisionTest {
    private val labels = listOf("angry", "sad", "fearful")

    @Test
    fun argmaxTakesTheFirstOnTiesLikeNumpy() {
        val d = Decision.fromInt8(byteArrayOf(5, 7, 7), labels, 0.1, 0)
        assertEquals(1, d.index)
        assertEquals("sad", d.label)
        assertEquals(0, Decision.argmax(floatArrayOf(0.3f, 0.3f, 0.3f)))
        assertEquals(2, Decision.argmax(byteArrayOf(-128, -100, 127)))
        assertEquals(1.0, d.probabilities.sum().toDouble(), 1e-6)
        assertTrue(d.confidence > 0.35f)
    }
}

class PosteriorSmootherTest {
    private fun rows(vararg r: FloatArray) = r.toList()

    @Test
    fun smoothOneChangesNothingButRenormalises() {
        val p = rows(floatArrayOf(0.2f, 0.2f), floatArrayOf(0f, 0f))
        val s = PosteriorSmoother.smooth(p, 1, PosteriorSmoother.Mode.MEDIAN)
        assertArrayEquals(floatArrayOf(0.5f, 0.5f), s[0], 0f)
        assertArrayEquals(floatArrayOf(0f, 0f), s[1], 0f) // an all-zero row stays zero, no NaN
        assertEquals(0, PosteriorSmoother.smooth(emptyList(), 3, PosteriorSmoother.Mode.EMA).size)
        assertThrows<IllegalArgumentException> { PosteriorSmoother.smooth(p, 0, PosteriorSmoother.Mode.EMA) }
        assertThrows<IllegalArgumentException> { PosteriorSmoother.Mode.of("mean") }
    }

    @Test
    fun medianRemovesASingleOutlier() {
        val a = floatArrayOf(0.9f, 0.1f)
        val b = floatArrayOf(0.1f, 0.9f)
        val s = PosteriorSmoother.smooth(rows(a, a, b, a, a), 3, PosteriorSmoother.Mode.MEDIAN)
        assertTrue(s.all { it[0] > 0.5f })
    }

    @Test
    fun emaIncrementalEqualsBatch() {
        val p = (0 until 9).map { j -> floatArrayOf((j % 3) / 3f, 1f - (j % 3) / 3f) }
        val batch = PosteriorSmoother.smooth(p, 4, PosteriorSmoother.Mode.EMA)
        val ema = PosteriorSmoother.Ema(4)
        for (j in p.indices) assertArrayEquals(batch[j], ema.update(p[j]), 0f)
        ema.reset()
        assertArrayEquals(p[3], ema.update(p[3]), 1e-7f)
    }

    @Test
    fun equalsPythonsSmoothingAndSegments() {
        val cases = Golden.list(Golden.index, "smoothing")
        assertTrue(cases.size >= 6)
        for (c in cases) {
            val what = "smooth=${Golden.int(c, "smooth")} ${Golden.str(c, "mode")}"
            val p = Golden.matrix(c["posteriors"])
            val s = PosteriorSmoother.smooth(p, Golden.int(c, "smooth"), PosteriorSmoother.Mode.of(Golden.str(c, "mode")))
            val expected = Golden.matrix(c["smoothed"])
            for (j in expected.indices) assertArrayEquals("$what row $j", expected[j], s[j], 1e-6f)
            val labels = (c["labels"] as List<*>).map { it as String }
            val segs = Timeline.segments(expected, Golden.doubles(c["centres"]), labels, Golden.num(c, "duration"))
            val want = Golden.list(c, "segments")
            assertEquals(what, want.size, segs.size)
            for (i in want.indices) {
                assertEquals(what, Golden.str(want[i], "label"), segs[i].label)
                assertEquals(what, Golden.int(want[i], "windows"), segs[i].windows)
                assertEquals(what, Golden.num(want[i], "start"), segs[i].start, 1e-12)
                assertEquals(what, Golden.num(want[i], "end"), segs[i].end, 1e-12)
                assertEquals(what, Golden.num(want[i], "confidence"), segs[i].confidence.toDouble(), 1e-6)
            }
        }
    }

    @Test
    fun segmentsSplitHalfWayBetweenCentres() {
        val a = floatArrayOf(0.8f, 0.2f)
        val b = floatArrayOf(0.3f, 0.7f)
        val segs = Timeline.segments(rows(a, a, b), doubleArrayOf(1.0, 1.5, 2.0), listOf("x", "y"), 3.0)
        assertEquals(2, segs.size)
        assertEquals(Segment(0.0, 1.75, "x", 0, 0.8f, 2), segs[0])
        assertEquals(Segment(1.75, 3.0, "y", 1, 0.7f, 1), segs[1])
        assertEquals(0, Timeline.segments(emptyList(), DoubleArray(0), listOf("x"), 1.0).size)
    }
}
