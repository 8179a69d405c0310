package org.kerashrf.ser.app

import org.kerashrf.ser.core.InferenceEngine
import org.kerashrf.ser.core.ModelMeta
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import java.nio.ByteBuffer
import java.nio.ByteOrder
import kotlin.math.abs

/**
 * [InferenceEngine] on the LiteRT interpreter (`com.google.ai.edge.litert:litert`).
 *
 * Configured like the project's reference runtime (`keras_hrf.export.check.litert_interpreter`):
 * one thread and no XNNPACK delegate, i.e. LiteRT's built-in int8 kernels, so the phone computes
 * what the Python checks measured (XNNPACK may differ by an int8 step or two). A model this small
 * runs in a few milliseconds either way.
 *
 * Checks at creation that the flatbuffer's tensors are what [meta] says (int8, shape, scale and
 * zero point), so a meta from another export cannot silently mis-quantize the input.
 *
 * Not thread-safe: create one per thread (creation takes milliseconds).
 */
class LiteRtEngine(model: ByteBuffer, meta: ModelMeta, threads: Int = 1) : InferenceEngine {
    private val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(threads).setUseXNNPACK(false))
    override val inputSize: Int
    override val outputSize: Int
    private val inputBuffer: ByteBuffer
    private val outputBuffer: ByteBuffer

    init {
        try {
            check(interpreter.inputTensorCount == 1 && interpreter.outputTensorCount == 1) {
                "expected a model with one input and one output, got ${interpreter.inputTensorCount} and ${interpreter.outputTensorCount}"
            }
            verify("input", interpreter.getInputTensor(0), meta.input.shape, meta.input.scale, meta.input.zeroPoint)
            verify("output", interpreter.getOutputTensor(0), meta.output.shape, meta.output.scale, meta.output.zeroPoint)
        } catch (e: Exception) {
            interpreter.close()
            throw e
        }
        inputSize = interpreter.getInputTensor(0).numElements()
        outputSize = interpreter.getOutputTensor(0).numElements()
        inputBuffer = ByteBuffer.allocateDirect(inputSize).order(ByteOrder.nativeOrder())
        outputBuffer = ByteBuffer.allocateDirect(outputSize).order(ByteOrder.nativeOrder())
    }

    private fun verify(name: String, t: Tensor, shape: List<Int>, scale: Double, zeroPoint: Int) {
        check(t.dataType() == DataType.INT8) { "the model's $name is ${t.dataType()}, this app runs int8 models" }
        check(t.shape().toList() == shape) { "the model's $name shape is ${t.shape().toList()}, model_meta.json says $shape" }
        val q = t.quantizationParams()
        check(abs(q.scale - scale) <= 1e-6 * scale && q.zeroPoint == zeroPoint) {
            "the model's $name quantization (${q.scale}, ${q.zeroPoint}) differs from model_meta.json ($scale, $zeroPoint)"
        }
    }

    override fun run(input: ByteArray, output: ByteArray) {
        require(input.size == inputSize && output.size == outputSize) {
            "expected $inputSize inputs and $outputSize outputs, got ${input.size} and ${output.size}"
        }
        inputBuffer.clear()
        inputBuffer.put(input)
        inputBuffer.rewind()
        outputBuffer.clear()
        interpreter.run(inputBuffer, outputBuffer)
        outputBuffer.rewind()
        outputBuffer.get(output)
    }

    override fun close() = interpreter.close()
}
