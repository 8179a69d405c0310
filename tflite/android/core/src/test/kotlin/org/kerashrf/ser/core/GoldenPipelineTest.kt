package org.kerashrf.ser.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import kotlin.math.abs

/**
 * The Kotlin front-end, quantizer and decision against Python's golden vectors, file by file
 * (synthetic WAV files always, real RAVDESS ones when the Python side had the corpus).
 */
class GoldenPipelineTest {
    private val files get() = Golden.list(Golden.index, "files")

    private fun maxAbsDiff(a: FloatArray, b: FloatArray): Double {
        assertEquals("array lengths", b.size, a.size)
        var worst = 0.0
        for (i in a.indices) worst = maxOf(worst, abs(a[i].toDouble() - b[i].toDouble()))
        return worst
    }

    @Test
    fun windowAndMelFiltersEqualLibrosas() {
        val meta = Golden.meta
        val fe = LogMelFrontEnd(meta.featureParams)
        val window = Golden.f64(Golden.str(Golden.index, "window"))
        var worstWindow = 0.0
        for (i in window.indices) worstWindow = maxOf(worstWindow, abs(window[i] - fe.window[i]))
        assertTrue("window differs by $worstWindow", worstWindow < 1e-15)
        val expected = Golden.f32(Golden.str(Golden.index, "mel_filters"))
        val dense = fe.filters.toDense()
        val actual = FloatArray(expected.size)
        dense.forEachIndexed { k, row -> row.copyInto(actual, k * row.size) }
        var differing = 0
        for (i in expected.indices) if (expected[i] != actual[i]) differing++
        val worst = maxAbsDiff(actual, expected)
        Golden.metric("mel_filter_max_abs_diff", worst)
        Golden.metric("mel_filter_coefs_not_bit_equal", "$differing/${expected.size}")
        assertTrue("mel filters differ by $worst", worst < 1e-7)
    }

    @Test
    fun wavReaderReadsWhatSoundfileReads() {
        for (f in files) {
            val wav = WavReader.read(Golden.file(Golden.str(f, "wav")).readBytes())
            assertEquals(Golden.int(f, "samples"), wav.samples.size)
            assertEquals(16000, wav.sampleRate)
            val expected = Golden.f32(Golden.str(f, "signal"))
            assertArrayEquals(Golden.str(f, "name"), expected, wav.samples, 0f)
        }
    }

    @Test
    fun featuresEqualPythonsWithin1e4() {
        val fe = LogMelFrontEnd(Golden.meta.featureParams)
        var worstFull = 0.0
        var worstFixed = 0.0
        var values = 0
        var notBitEqual = 0
        for (f in files) {
            val name = Golden.str(f, "name")
            val signal = WavReader.read(Golden.file(Golden.str(f, "wav")).readBytes()).samples
            val full = fe.logMel(signal)
            assertEquals(name, Golden.int(f, "frames_full"), full.frames)
            val expectedFull = Golden.f32(Golden.str(f, "logmel_full"))
            val dFull = maxAbsDiff(full.values, expectedFull)
            for (i in expectedFull.indices) if (full.values[i] != expectedFull[i]) notBitEqual++
            val fixed = fe.fixLength(full)
            val dFixed = maxAbsDiff(fixed.values, Golden.f32(Golden.str(f, "features")))
            Golden.metric("feature_max_abs_diff[$name]", dFull)
            worstFull = maxOf(worstFull, dFull)
            worstFixed = maxOf(worstFixed, dFixed)
            values += full.values.size
        }
        Golden.metric("feature_max_abs_diff", worstFull)
        Golden.metric("feature_values_not_bit_equal", "$notBitEqual/$values")
        assertTrue("log-Mel differs by $worstFull", worstFull <= 1e-4)
        assertTrue("fixed-length features differ by $worstFixed", worstFixed <= 1e-4)
    }

    @Test
    fun frontEndVariantsEqualPythons() {
        // Other FeatureParams than the model's (HTK mel, power 2, centre padding, other sizes,
        // crop "start", pad_value): the recipe follows the parameters, not fixed constants.
        val variants = Golden.list(Golden.index, "frontend_variants")
        assertTrue(variants.isNotEmpty())
        val signal = Golden.f32(Golden.str(Golden.index, "variant_signal"))
        for (v in variants) {
            val meta = ModelMeta.parse(Golden.file(Golden.str(v, "meta")).readText(), Golden.str(v, "meta"))
            val fe = LogMelFrontEnd(meta.featureParams)
            val full = fe.logMel(signal)
            assertEquals(Golden.str(v, "name"), Golden.int(v, "frames_full"), full.frames)
            val d = maxAbsDiff(full.values, Golden.f32(Golden.str(v, "logmel_full")))
            val dFixed = maxAbsDiff(fe.fixLength(full).values, Golden.f32(Golden.str(v, "features")))
            Golden.metric("variant_feature_max_abs_diff[${Golden.str(v, "name")}]", d)
            assertTrue("${Golden.str(v, "name")}: log-Mel differs by $d", d <= 1e-4)
            assertTrue("${Golden.str(v, "name")}: fixed features differ by $dFixed", dFixed <= 1e-4)
        }
    }

    @Test
    fun normaliserAndQuantizerAreBitExactOnPythonsFeatures() {
        val meta = Golden.meta
        val q = InputQuantizer(meta)
        for (f in files) {
            val name = Golden.str(f, "name")
            val feats = Golden.f32(Golden.str(f, "features"))
            val normalized = Golden.f32(Golden.str(f, "normalized"))
            for (i in feats.indices) {
                val k = i % meta.nMels
                assertEquals("$name normalised value $i", normalized[i], q.normalize(feats[i], k))
            }
            val input = q.quantize(Features(meta.frames, meta.nMels, feats))
            assertArrayEquals("$name int8 input from Python's features", Golden.i8(Golden.str(f, "input")), input)
        }
    }

    @Test
    fun int8InputsFromWavEqualPythons() {
        // End to end: WAV bytes -> Kotlin log-Mel -> int8, against Python's int8 input. Features
        // agree to ~1e-6, so a value can land on the other side of a rounding boundary; allowed:
        // one step, in fewer than 0.1 % of the values.
        val meta = Golden.meta
        val fe = LogMelFrontEnd(meta.featureParams)
        val q = InputQuantizer(meta)
        var differing = 0
        var total = 0
        var worst = 0
        for (f in files) {
            val signal = WavReader.read(Golden.file(Golden.str(f, "wav")).readBytes()).samples
            val input = q.quantize(fe.features(signal))
            val expected = Golden.i8(Golden.str(f, "input"))
            assertEquals(expected.size, input.size)
            for (i in input.indices) {
                val d = abs(input[i] - expected[i])
                if (d != 0) differing++
                worst = maxOf(worst, d)
            }
            total += input.size
        }
        Golden.metric("int8_input_mismatches", "$differing/$total")
        Golden.metric("int8_input_max_step_diff", worst)
        assertTrue("int8 inputs differ by $worst steps", worst <= 1)
        assertTrue("$differing of $total int8 inputs differ (limit 0.1 %)", differing * 1000 < total)
    }

    @Test
    fun labelDecisionFromGoldenOutputEqualsPythons() {
        val meta = Golden.meta
        for (f in files) {
            val name = Golden.str(f, "name")
            val output = Golden.i8(Golden.str(f, "output"))
            val d = Decision.fromInt8(output, meta)
            assertEquals(name, Golden.int(f, "label_index"), d.index)
            assertEquals(name, Golden.str(f, "label"), d.label)
            val p = Golden.doubles(f["probabilities"])
            for (k in p.indices) assertEquals("$name p[$k]", p[k], d.probabilities[k].toDouble(), 1e-6)
        }
    }

    @Test
    fun classifierRunsTheEngineOnTheGoldenInput() {
        // The plumbing of EmotionClassifier: the engine sees the int8 input that Python fed
        // LiteRT (up to the one-step mismatches above) and its output becomes Python's label.
        val meta = Golden.meta
        for (f in files) {
            val expectedInput = Golden.i8(Golden.str(f, "input"))
            val output = Golden.i8(Golden.str(f, "output"))
            val engine = RecordingEngine(meta.frames * meta.nMels, meta.labels.size) { output }
            val signal = WavReader.read(Golden.file(Golden.str(f, "wav")).readBytes()).samples
            val r = EmotionClassifier(meta, engine).classifyUtterance(signal)
            var differing = 0
            for (i in expectedInput.indices) if (engine.inputs[0][i] != expectedInput[i]) differing++
            assertTrue("$differing input values differ", differing * 1000 < expectedInput.size)
            assertEquals(Golden.str(f, "label"), r.decision.label)
        }
    }
}
