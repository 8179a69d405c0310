package org.kerashrf.ser.core

/**
 * Runs the int8 model on one window: the seam between `core` and a runtime.
 *
 * The app implements it with the LiteRT `Interpreter` (`app/.../LiteRtEngine.kt`); tests use
 * fakes that replay Python's golden outputs. Keeping LiteRT behind this interface is what lets
 * `core` compile and be tested on a plain JVM, without Android or LiteRT.
 */
interface InferenceEngine : AutoCloseable {
    /** Elements of the int8 input tensor (`frames * n_mels` for batch 1). */
    val inputSize: Int

    /** Elements of the int8 output tensor (the number of classes). */
    val outputSize: Int

    /**
     * Runs the model: [input] holds [inputSize] int8 values (row-major `[1, frames, n_mels]`),
     * [output] receives [outputSize] int8 values (quantized logits).
     */
    fun run(input: ByteArray, output: ByteArray)

    override fun close() {}
}
