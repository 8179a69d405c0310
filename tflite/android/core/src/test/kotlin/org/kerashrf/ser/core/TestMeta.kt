package org.kerashrf.ser.core

/**
 * A small valid `model_meta.json`, shaped like the exporter's, for tests that must not depend on
 * the golden vectors (and as the base that malformed variants are edited from).
 */
object TestMeta {
    fun json(
        frames: Int = 20,
        nMels: Int = 8,
        labels: List<String> = listOf("angry", "sad", "fearful"),
        inputScale: Double = 0.05,
        inputZeroPoint: Int = -3,
        extraFeatureParams: String = "",
        schemaVersion: Int = 1,
    ): String {
        val mean = (0 until nMels).joinToString(", ") { "${-6.0 + 0.25 * it}" }
        val std = (0 until nMels).joinToString(", ") { "${2.0 + 0.125 * it}" }
        val labelText = labels.joinToString(", ") { "\"$it\"" }
        return """
        {
          "schema_version": $schemaVersion,
          "labels": [$labelText],
          "feature_params": {
            "sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160,
            "center": false, "power": 1.0, "n_mels": $nMels, "fmin": 0.0, "fmax": 8000.0,
            "mel": "slaney", "log_offset": 1e-06, "frames": $frames, "crop": "center",
            "pad_value": null, "min_duration": 0.1$extraFeatureParams
          },
          "normalizer": {"mean": [$mean], "std": [$std], "exclude_floor": false, "floor": null,
                         "feature_fingerprint": null},
          "input": {"name": "serving_default_x:0", "shape": [1, $frames, $nMels], "dtype": "int8",
                    "scale": $inputScale, "zero_point": $inputZeroPoint},
          "output": {"name": "StatefulPartitionedCall:0", "shape": [1, ${labels.size}],
                     "dtype": "int8", "scale": 0.125, "zero_point": 10},
          "arena": {"min_bytes": 10000, "recommended_bytes": 12288},
          "ops": ["FULLY_CONNECTED", "SOFTMAX"],
          "files": {"int8": "model_int8.tflite", "meta": "model_meta.json"},
          "origin": {"family": "conv_transformer", "note": "caf\u00e9 \"quoted\""}
        }
        """.trimIndent()
    }

    fun meta(frames: Int = 20, nMels: Int = 8): ModelMeta = ModelMeta.parse(json(frames = frames, nMels = nMels))
}
