package org.kerashrf.ser.core

import java.io.InputStream

/** A WAV file the app cannot use; the message says what is wrong and how to fix it. */
class WavFormatException(message: String) : IllegalArgumentException(message)

/**
 * Decoded audio.
 *
 * @property samples Float samples in [-1, 1): 16-bit PCM divided by 32768, exactly what
 *   libsndfile (the Python pipeline's `load_audio`) returns for the same file.
 * @property sampleRate Samples per second.
 */
class WavAudio(val samples: FloatArray, val sampleRate: Int) {
    /** Length in seconds. */
    val duration: Double get() = samples.size.toDouble() / sampleRate
}

/**
 * Reads RIFF/WAVE files holding 16-bit PCM, mono, at the model's rate (16 kHz by default).
 *
 * Deliberately narrow: resampling and channel mixing would need their own tests against
 * Python's (soxr) resampler, so other formats are refused with a message that says how to
 * convert them. Chunks other than `fmt ` and `data` (LIST, fact, ...) are skipped;
 * WAVE_FORMAT_EXTENSIBLE with a PCM sub-format is accepted; a `data` size beyond the end of the
 * file (streamed writers leave 0 or 0xFFFFFFFF there) is clipped to the bytes present.
 */
object WavReader {
    private const val FORMAT_PCM = 1
    private const val FORMAT_EXTENSIBLE = 0xFFFE
    private const val HINT = "convert it first, e.g. `ffmpeg -i in.wav -ac 1 -ar 16000 -c:a pcm_s16le out.wav`"

    /** Reads a whole stream (e.g. from Android's ContentResolver) and decodes it. */
    fun read(stream: InputStream, expectedRate: Int = 16000, name: String = "WAV file"): WavAudio =
        read(stream.readBytes(), expectedRate, name)

    /**
     * Decodes [bytes].
     *
     * @param expectedRate The model's sample rate; another rate is an error.
     * @param name Used in error messages.
     * @throws WavFormatException for anything but 16-bit PCM mono at [expectedRate], and for
     *   truncated or empty files.
     */
    fun read(bytes: ByteArray, expectedRate: Int = 16000, name: String = "WAV file"): WavAudio {
        fun fail(msg: String): Nothing = throw WavFormatException("$name: $msg")
        if (bytes.size < 12) fail("too short to be a WAV file (${bytes.size} bytes)")
        val riff = String(bytes, 0, 4, Charsets.US_ASCII)
        if (riff == "RIFX" || riff == "RF64") fail("$riff files are not supported; $HINT")
        if (riff != "RIFF" || String(bytes, 8, 4, Charsets.US_ASCII) != "WAVE") {
            fail("not a RIFF/WAVE file (starts with '${printable(bytes, 0, 4)}'); pick a .wav file or $HINT")
        }
        var pos = 12
        var format = -1
        var channels = 0
        var rate = 0
        var bits = 0
        var dataStart = -1
        var dataSize = 0
        while (pos + 8 <= bytes.size) {
            val id = String(bytes, pos, 4, Charsets.US_ASCII)
            val size = u32(bytes, pos + 4)
            val body = pos + 8
            when (id) {
                "fmt " -> {
                    if (size < 16 || body + 16 > bytes.size) fail("truncated 'fmt ' chunk")
                    format = u16(bytes, body)
                    channels = u16(bytes, body + 2)
                    rate = u32(bytes, body + 4).toInt()
                    bits = u16(bytes, body + 14)
                    if (format == FORMAT_EXTENSIBLE) {
                        if (size < 40 || body + 26 > bytes.size) fail("truncated WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk")
                        format = u16(bytes, body + 24) // first two bytes of the sub-format GUID
                    }
                }
                "data" -> {
                    if (format < 0) fail("'data' chunk before the 'fmt ' chunk")
                    dataStart = body
                    dataSize = minOf(size, (bytes.size - body).toLong()).toInt()
                    break
                }
            }
            if (size > Int.MAX_VALUE - body - 1) break
            pos = body + size.toInt() + (size.toInt() and 1) // chunks are padded to even sizes
        }
        if (format < 0) fail("no 'fmt ' chunk (truncated or not a WAV file)")
        if (format != FORMAT_PCM) {
            val what = if (format == 3) "32-bit float" else "format code $format"
            fail("$what audio is not supported, only 16-bit integer PCM; $HINT")
        }
        if (bits != 16) fail("$bits-bit PCM is not supported, only 16-bit; $HINT")
        if (channels != 1) fail("$channels channels, the model needs mono; $HINT")
        if (rate != expectedRate) fail("sample rate $rate Hz, the model needs $expectedRate Hz; $HINT")
        if (dataStart < 0) fail("no 'data' chunk (truncated file?)")
        val n = dataSize / 2
        if (n == 0) fail("no audio samples in the 'data' chunk")
        val samples = FloatArray(n) {
            val lo = bytes[dataStart + 2 * it].toInt() and 0xFF
            val hi = bytes[dataStart + 2 * it + 1].toInt()
            ((hi shl 8) or lo).toShort() / 32768f
        }
        return WavAudio(samples, rate)
    }

    private fun u16(b: ByteArray, at: Int): Int = (b[at].toInt() and 0xFF) or ((b[at + 1].toInt() and 0xFF) shl 8)

    private fun u32(b: ByteArray, at: Int): Long =
        (u16(b, at).toLong()) or (u16(b, at + 2).toLong() shl 16)

    private fun printable(b: ByteArray, at: Int, n: Int): String =
        (at until minOf(b.size, at + n)).joinToString("") {
            val c = b[it].toInt() and 0xFF
            if (c in 32..126) c.toChar().toString() else "?"
        }
}
