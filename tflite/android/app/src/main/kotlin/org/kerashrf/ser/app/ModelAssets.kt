package org.kerashrf.ser.app

import android.content.Context
import org.kerashrf.ser.core.ModelMeta
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The bundled model: `model_meta.json` and `model_int8.tflite` from the app's assets, copied
 * there from a keras-hrf export by the Gradle task `copyModelAssets`.
 */
class ModelAssets private constructor(val meta: ModelMeta, private val model: ByteArray) {
    /** A new LiteRT engine on its own copy of the model (one per thread). */
    fun newEngine(): LiteRtEngine {
        val buffer = ByteBuffer.allocateDirect(model.size).order(ByteOrder.nativeOrder())
        buffer.put(model)
        buffer.rewind()
        return LiteRtEngine(buffer, meta)
    }

    companion object {
        const val META = "model_meta.json"
        const val MODEL = "model_int8.tflite"

        /**
         * Loads and validates both files.
         *
         * @throws IllegalStateException when the assets hold no model (message: how to add one).
         * @throws org.kerashrf.ser.core.ModelMetaException for a malformed meta or a model from
         *   another export.
         */
        fun load(context: Context): ModelAssets {
            val names = context.assets.list("")?.toSet().orEmpty()
            if (META !in names || MODEL !in names) throw IllegalStateException(context.getString(R.string.no_model))
            val text = context.assets.open(META).bufferedReader().use { it.readText() }
            val meta = ModelMeta.parse(text, "assets/$META")
            val model = context.assets.open(MODEL).use { it.readBytes() }
            meta.checkModel(model, MODEL)
            return ModelAssets(meta, model)
        }
    }
}
