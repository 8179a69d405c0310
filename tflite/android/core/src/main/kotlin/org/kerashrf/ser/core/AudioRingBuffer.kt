package org.kerashrf.ser.core

/**
 * A fixed-capacity FIFO of float samples between the microphone and the front-end.
 *
 * The recorder writes blocks of whatever size `AudioRecord.read` returns; the front-end needs
 * `n_fft` samples per frame and then advances by `hop` (frames overlap), so it [peek]s a frame
 * and [skip]s a hop. Writing more than [free] samples is an error rather than a silent overwrite:
 * dropping samples would shift every later frame off the training grid, so the caller must
 * consume first (StreamingClassifier feeds it in pieces that fit).
 *
 * Not thread-safe: one producer/consumer thread (the app records and computes on one background
 * thread).
 */
class AudioRingBuffer(val capacity: Int) {
    private val data = FloatArray(capacity)
    private var readPos = 0

    /** Samples currently held. */
    var size: Int = 0
        private set

    /** Samples ever consumed by [skip]: the stream position of the first held sample. */
    var consumed: Long = 0
        private set

    init {
        require(capacity > 0) { "ring buffer capacity must be positive, got $capacity" }
    }

    /** Room left. */
    val free: Int get() = capacity - size

    /** Appends `src[offset until offset + count]`. @throws IllegalStateException if it does not fit. */
    fun write(src: FloatArray, offset: Int = 0, count: Int = src.size - offset) {
        checkRange(src.size, offset, count)
        check(count <= free) { "ring buffer overflow: $count samples written, $free free of $capacity" }
        var writePos = (readPos + size) % capacity
        var done = 0
        while (done < count) {
            val n = minOf(count - done, capacity - writePos)
            src.copyInto(data, writePos, offset + done, offset + done + n)
            done += n
            writePos = (writePos + n) % capacity
        }
        size += count
    }

    /**
     * Appends 16-bit PCM samples scaled to [-1, 1) by 1/32768, as libsndfile (and therefore the
     * training pipeline's `load_audio`) reads 16-bit WAV files.
     */
    fun writePcm16(src: ShortArray, offset: Int = 0, count: Int = src.size - offset) {
        checkRange(src.size, offset, count)
        check(count <= free) { "ring buffer overflow: $count samples written, $free free of $capacity" }
        var writePos = (readPos + size) % capacity
        for (i in 0 until count) {
            data[writePos] = src[offset + i] / 32768f
            writePos = if (writePos + 1 == capacity) 0 else writePos + 1
        }
        size += count
    }

    /** Copies the oldest [count] samples into `dst[dstOffset]` without consuming them. */
    fun peek(dst: FloatArray, count: Int, dstOffset: Int = 0) {
        require(count in 0..size) { "cannot peek $count samples, $size held" }
        checkRange(dst.size, dstOffset, count)
        var done = 0
        var pos = readPos
        while (done < count) {
            val n = minOf(count - done, capacity - pos)
            data.copyInto(dst, dstOffset + done, pos, pos + n)
            done += n
            pos = (pos + n) % capacity
        }
    }

    /** Drops the oldest [count] samples. */
    fun skip(count: Int) {
        require(count in 0..size) { "cannot skip $count samples, $size held" }
        readPos = (readPos + count) % capacity
        size -= count
        consumed += count
    }

    /** Empties the buffer and resets the stream position. */
    fun clear() {
        readPos = 0
        size = 0
        consumed = 0
    }

    private fun checkRange(length: Int, offset: Int, count: Int) {
        require(offset >= 0 && count >= 0 && offset + count <= length) {
            "range [$offset, ${offset + count}) outside an array of $length"
        }
    }
}
