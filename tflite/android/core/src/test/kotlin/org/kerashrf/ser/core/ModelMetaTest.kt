package org.kerashrf.ser.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File

class JsonTest {
    @Test
    fun parsesValuesAndKeepsIntegersApartFromFloats() {
        val v = Json.parse("""{"a": [1, -2.5, 1e-06, true, null, "x\n\u00e9"], "b": {}, "c": 12345678901}""") as Map<*, *>
        val a = v["a"] as List<*>
        assertEquals(1L, a[0])
        assertEquals(-2.5, a[1])
        assertEquals(1e-6, a[2])
        assertEquals(true, a[3])
        assertNull(a[4])
        assertEquals("x\né", a[5])
        assertEquals(emptyMap<String, Any?>(), v["b"])
        assertEquals(12345678901L, v["c"])
    }

    @Test
    fun float32ValuesWrittenByPythonReadBackExactly() {
        // Python writes float(np.float32(v)) as the shortest double repr.
        for (f in listOf(0.1f, -13.815511f, 3.4028235e38f, 1.0e-45f, 0.0078125f)) {
            val text = f.toDouble().toString()
            assertEquals(f, (Json.parse(text) as Number).toDouble().toFloat())
        }
    }

    @Test
    fun rejectsInvalidJsonWithAPosition() {
        val bad = listOf("", "{", "[1,]", "{\"a\" 1}", "tru", "NaN", "01", "1.", "\"abc", "{\"a\":1}}", "{\"a\":1,\"a\":2}")
        for (text in bad) {
            try {
                Json.parse(text)
                fail("accepted invalid JSON: $text")
            } catch (e: JsonException) {
                assertTrue(e.message!!, e.message!!.contains("at character"))
            }
        }
    }
}

class ModelMetaTest {
    private fun assertRejected(text: String, vararg expected: String) {
        try {
            ModelMeta.parse(text, "model_meta.json")
            fail("accepted malformed meta, expected an error mentioning ${expected.toList()}")
        } catch (e: ModelMetaException) {
            val msg = e.message!!
            assertTrue("message should name the file: $msg", msg.startsWith("model_meta.json: "))
            for (word in expected) assertTrue("message should mention '$word': $msg", msg.contains(word))
        }
    }

    @Test
    fun parsesAValidMeta() {
        val m = TestMeta.meta()
        assertEquals(listOf("angry", "sad", "fearful"), m.labels)
        assertEquals(20, m.frames)
        assertEquals(8, m.nMels)
        assertEquals(0.05, m.input.scale, 0.0)
        assertEquals(-3, m.input.zeroPoint)
        assertEquals(10, m.output.zeroPoint)
        assertEquals(12288L, m.arenaBytes)
        assertEquals(-6.0f, m.normalizer.mean[0])
        assertEquals(Math.log(1e-6).toFloat(), m.featureParams.fillValue)
        assertEquals("café \"quoted\"", (m.raw["origin"] as Map<*, *>)["note"])
    }

    @Test
    fun malformedMetaGivesClearErrors() {
        val ok = TestMeta.json()
        assertRejected("{\"schema_version\": 1", "not valid JSON")
        assertRejected("[1, 2]", "expected a JSON object")
        assertRejected(ok.replace("\"scale\": 0.05, ", ""), "missing key 'input.scale'")
        assertRejected(ok.replace("\"ops\"", "\"opz\""), "missing key 'ops'")
        assertRejected(TestMeta.json(schemaVersion = 2), "schema_version 2", "not supported")
        assertRejected(TestMeta.json(extraFeatureParams = ", \"n_mel\": 64"), "unknown feature_params key", "n_mel")
        assertRejected(ok.replace("\"n_fft\": 512", "\"n_fft\": 500"), "n_fft", "power of two")
        assertRejected(ok.replace("\"n_fft\": 512", "\"n_fft\": \"512\""), "feature_params.n_fft", "integer")
        assertRejected(ok.replace("\"mel\": \"slaney\"", "\"mel\": \"bark\""), "feature_params.mel")
        assertRejected(ok.replace("\"labels\": [\"angry\", \"sad\", \"fearful\"]", "\"labels\": [\"angry\", \"sad\"]"), "2 labels")
        val labels = "\"labels\": [\"angry\", \"sad\", \"fearful\"]"
        assertRejected(ok.replace(labels, "\"labels\": [\"angry\", \"sad\", \"sad\"]"), "not distinct")
        assertRejected(ok.replace("\"shape\": [1, 20, 8]", "\"shape\": [1, 20, 9]"), "9 mel bands")
        assertRejected(ok.replace("\"shape\": [1, 20, 8]", "\"shape\": [1, 21, 8]"), "21 frames")
        assertRejected(ok.replace("\"std\": [2.0", "\"std\": [0.0"), "std > 0")
        assertRejected(ok.replace("\"mean\": [-6.0, ", "\"mean\": ["), "equal-length")
        assertRejected(ok.replace("\"scale\": 0.05", "\"scale\": -1.0"), "input.scale")
        assertRejected(ok.replace("\"scale\": 0.05", "\"scale\": true"), "input.scale", "number")
        assertRejected(ok.replace("\"dtype\": \"int8\",\n", "\"dtype\": \"uint8\",\n"), "dtype")
    }

    @Test
    fun parsesWhatTheExporterWrote() {
        val g = Golden.index
        val m = Golden.meta
        val e = Golden.obj(g, "meta_expect")
        assertEquals((e["labels"] as List<*>).map { it as String }, m.labels)
        assertEquals(Golden.doubles(e["input_shape"]).map { it.toInt() }, m.input.shape)
        assertEquals(Golden.num(e, "input_scale"), m.input.scale, 0.0)
        assertEquals(Golden.int(e, "input_zero_point"), m.input.zeroPoint)
        assertEquals(Golden.num(e, "output_scale"), m.output.scale, 0.0)
        assertEquals(Golden.int(e, "output_zero_point"), m.output.zeroPoint)
        assertEquals(Golden.int(e, "frames"), m.frames)
        assertEquals(Golden.int(e, "n_mels"), m.nMels)
        assertEquals(Golden.num(e, "fill_value").toFloat(), m.featureParams.fillValue)
        assertEquals(Golden.int(e, "arena_recommended_bytes").toLong(), m.arenaBytes)
        assertEquals((e["ops"] as List<*>).map { it as String }, m.ops)
        val mean = Golden.doubles(e["normalizer_mean"])
        val std = Golden.doubles(e["normalizer_std"])
        for (k in mean.indices) {
            assertEquals(mean[k].toFloat(), m.normalizer.mean[k])
            assertEquals(std[k].toFloat(), m.normalizer.std[k])
        }
    }

    @Test
    fun modelFileMustBeTheOneTheMetaDescribes() {
        val bytes = Golden.file("model_int8.tflite").readBytes()
        Golden.meta.checkModel(bytes)
        bytes[bytes.size / 2] = (bytes[bytes.size / 2] + 1).toByte()
        val e = assertThrows<ModelMetaException> { Golden.meta.checkModel(bytes) }
        assertTrue(e.message!!, e.message!!.contains("same keras-hrf export"))
        TestMeta.meta().checkModel(bytes) // no sha256 entry: nothing to check
    }

    /** Variants that Python's load_meta accepts must parse to the same values here. */
    @Test
    fun acceptsWhatPythonAccepts() {
        for (v in Golden.list(Golden.index, "meta_valid")) {
            val name = Golden.str(v, "name")
            val m = ModelMeta.parse(Golden.file(Golden.str(v, "file")).readText(), name)
            val p = Golden.obj(v, "feature_params")
            assertEquals(name, Golden.str(p, "mel"), m.featureParams.mel)
            assertEquals(name, Golden.str(p, "crop"), m.featureParams.crop)
            assertEquals(name, Golden.num(p, "fill_value").toFloat(), m.featureParams.fillValue)
            assertEquals(name, Golden.int(p, "frames"), m.featureParams.frames)
        }
    }

    /** Variants that Python's load_meta rejects must be rejected here, naming the same thing. */
    @Test
    fun rejectsWhatPythonRejects() {
        val cases = Golden.list(Golden.index, "meta_invalid")
        assertTrue(cases.size >= 5)
        for (v in cases) {
            val text = File(Golden.require(), Golden.str(v, "file")).readText()
            assertRejected(text, Golden.str(v, "expect"))
        }
    }
}
