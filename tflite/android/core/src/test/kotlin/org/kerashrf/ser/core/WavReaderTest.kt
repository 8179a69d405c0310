package org.kerashrf.ser.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.ByteArrayOutputStream

class WavReaderTest {
    private fun le16(v: Int) = byteArrayOf(v.toByte(), (v shr 8).toByte())
    private fun le32(v: Long) = byteArrayOf(v.toByte(), (v shr 8).toByte(), (v shr 16).toByte(), (v shr 24).toByte())

    private fun chunk(id: String, body: ByteArray, declared: Long = body.size.toLong()): ByteArray {
        val out = ByteArrayOutputStream()
        out.write(id.toByteArray(Charsets.US_ASCII))
        out.write(le32(declared))
        out.write(body)
        if (body.size % 2 == 1) out.write(0)
        return out.toByteArray()
    }

    private fun fmt(format: Int = 1, channels: Int = 1, rate: Int = 16000, bits: Int = 16, extensible: Boolean = false): ByteArray {
        val out = ByteArrayOutputStream()
        out.write(le16(if (extensible) 0xFFFE else format))
        out.write(le16(channels))
        out.write(le32(rate.toLong()))
        out.write(le32(rate.toLong() * channels * bits / 8))
        out.write(le16(channels * bits / 8))
        out.write(le16(bits))
        if (extensible) {
            out.write(le16(22))
            out.write(le16(bits))
            out.write(le32(4))
            out.write(le16(format)) // sub-format GUID starts with the format code
            out.write(byteArrayOf(0, 0, 0, 0, 0x10, 0, 0x80.toByte(), 0, 0, 0xAA.toByte(), 0, 0x38, 0x9B.toByte(), 0x71))
        }
        return out.toByteArray()
    }

    private fun pcm(vararg samples: Int): ByteArray {
        val out = ByteArrayOutputStream()
        for (s in samples) out.write(le16(s))
        return out.toByteArray()
    }

    private fun wav(vararg chunks: ByteArray, riff: String = "RIFF"): ByteArray {
        val body = ByteArrayOutputStream()
        body.write("WAVE".toByteArray(Charsets.US_ASCII))
        for (c in chunks) body.write(c)
        val out = ByteArrayOutputStream()
        out.write(riff.toByteArray(Charsets.US_ASCII))
        out.write(le32(body.size().toLong()))
        out.write(body.toByteArray())
        return out.toByteArray()
    }

    private fun assertRejected(bytes: ByteArray, vararg words: String) {
        val e = assertThrows<WavFormatException> { WavReader.read(bytes, 16000, "x.wav") }
        val msg = e.message!!
        assertTrue(msg, msg.startsWith("x.wav: "))
        for (w in words) assertTrue("'$w' not in: $msg", msg.contains(w))
    }

    @Test
    fun readsPlainPcm16Mono() {
        val a = WavReader.read(wav(chunk("fmt ", fmt()), chunk("data", pcm(0, 16384, -32768, 32767))))
        assertArrayEquals(floatArrayOf(0f, 0.5f, -1f, 32767f / 32768f), a.samples, 0f)
        assertEquals(16000, a.sampleRate)
        assertEquals(4.0 / 16000, a.duration, 1e-15)
    }

    @Test
    fun skipsOtherChunksIncludingOddSizedOnes() {
        val list = chunk("LIST", "INFOabc".toByteArray()) // 7 bytes + pad byte
        val a = WavReader.read(wav(list, chunk("fmt ", fmt()), chunk("fact", le32(2)), chunk("data", pcm(1, 2))))
        assertArrayEquals(floatArrayOf(1 / 32768f, 2 / 32768f), a.samples, 0f)
    }

    @Test
    fun acceptsExtensiblePcmAndClipsAnOversizedDataChunk() {
        val a = WavReader.read(wav(chunk("fmt ", fmt(extensible = true)), chunk("data", pcm(5, 6, 7), declared = 0xFFFFFFFFL)))
        assertEquals(3, a.samples.size)
    }

    @Test
    fun refusesWhatTheModelCannotUseWithAHowTo() {
        assertRejected(wav(chunk("fmt ", fmt(channels = 2)), chunk("data", pcm(1, 2))), "2 channels", "mono", "ffmpeg")
        assertRejected(wav(chunk("fmt ", fmt(rate = 44100)), chunk("data", pcm(1))), "44100 Hz", "16000 Hz")
        assertRejected(wav(chunk("fmt ", fmt(bits = 8)), chunk("data", pcm(1))), "8-bit")
        assertRejected(wav(chunk("fmt ", fmt(bits = 24)), chunk("data", pcm(1, 2, 3))), "24-bit")
        assertRejected(wav(chunk("fmt ", fmt(format = 3, bits = 32)), chunk("data", pcm(1, 2))), "32-bit float")
        assertRejected(wav(chunk("fmt ", fmt(format = 3, bits = 32, extensible = true)), chunk("data", pcm(1, 2))), "32-bit float")
        assertRejected(wav(chunk("fmt ", fmt()), chunk("data", ByteArray(0))), "no audio samples")
        assertRejected(wav(chunk("fmt ", fmt())), "no 'data' chunk")
        assertRejected(wav(chunk("data", pcm(1))), "before the 'fmt ' chunk")
        assertRejected(wav(chunk("LIST", ByteArray(4))), "no 'fmt ' chunk")
        assertRejected(wav(chunk("fmt ", fmt()), riff = "RIFX"), "RIFX")
        assertRejected("ID3\u0003 not a wav file".toByteArray(), "not a RIFF/WAVE file", "ID3")
        assertRejected(ByteArray(5), "too short")
        assertRejected(wav(chunk("fmt ", fmt().copyOf(10))), "truncated 'fmt ' chunk")
    }

    @Test
    fun readsFromAStream() {
        val bytes = wav(chunk("fmt ", fmt()), chunk("data", pcm(100)))
        assertEquals(100 / 32768f, WavReader.read(bytes.inputStream()).samples[0], 0f)
    }
}
