// keras-hrf speech emotion recognition on TensorFlow Lite Micro: a minimal application.
//
// Runs the exported int8 model once and prints the predicted emotion and the arena it used. The
// generated headers/sources come from keras_hrf.tflite.export:
//   model_data.h / model_data.cc  the flatbuffer as an aligned C array, labels, sizing macros
//   op_resolver.h                 a MicroMutableOpResolver with exactly the model's ops
//   example_input.h               one quantized input window and the label TFLM gives it
// Built as self_test.cc (-DKERAS_HRF_SELF_TEST; make APP=self_test, TFLM's test target) it runs
// on the example window and checks the label: a self-test of the build. Without it the input is
// the input zero point everywhere (the training mean of every band), which keeps the 19 KB example
// out of the firmware's flash; ReadInput() below is where an application's front-end goes:
// log-Mel (FeatureParams in model_meta.json), normalised with the stored mean/std, quantized
// with KERAS_HRF_INPUT_SCALE / KERAS_HRF_INPUT_ZERO_POINT (round half away from zero, clamp);
// audio_main.cc does all of that on a live stream.
//
// Exit status: 0 on success (self-test: the expected label), 1 on a TFLM error, 2 on a self-test
// mismatch.

#include <cstdint>
#include <cstring>

#if defined(KERAS_HRF_SELF_TEST)
#include "example_input.h"
#endif
#include "log_setup.h"
#include "model_data.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

// Older TFLite trees define it in tensorflow/lite/version.h, which TFLM does not ship.
#ifndef TFLITE_SCHEMA_VERSION
#define TFLITE_SCHEMA_VERSION 3
#endif

namespace {

// The tensor arena: every activation, the interpreter's bookkeeping and kernel scratch live
// here. Static (not on the stack, which is small on a microcontroller) and 16-byte aligned,
// which TFLM expects; KERAS_HRF_ARENA_SIZE already includes a margin over the host measurement.
alignas(16) uint8_t g_tensor_arena[KERAS_HRF_ARENA_SIZE];

// Index of the largest int8 score (the int8 output is monotonic in the logit, so no need to
// dequantize for the arg max).
int ArgMax(const int8_t* scores, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (scores[i] > scores[best]) best = i;
  }
  return best;
}

// Fills the int8 input tensor (`bytes` of it).
void ReadInput(int8_t* input, size_t bytes) {
#if defined(KERAS_HRF_SELF_TEST)
  std::memcpy(input, g_example_input, bytes);
#else
  std::memset(input, KERAS_HRF_INPUT_ZERO_POINT, bytes);
#endif
}

}  // namespace

int main(int argc, char* argv[]) {
  (void)argc;
  (void)argv;
  keras_hrf::SetupLog();  // cortex_m_generic prints nothing without it
  tflite::InitializeTarget();

  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("model schema version %d, this TFLM supports %d", static_cast<int>(model->version()),
                TFLITE_SCHEMA_VERSION);
    return 1;
  }

  bool resolver_ok = false;
  KerasHrfOpResolver& resolver = GetKerasHrfOpResolver(&resolver_ok);
  if (!resolver_ok) {
    MicroPrintf("could not register the model's ops (resolver too small?)");
    return 1;
  }

  tflite::MicroInterpreter interpreter(model, resolver, g_tensor_arena, KERAS_HRF_ARENA_SIZE);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("AllocateTensors failed: arena of %d bytes too small or an op is missing",
                KERAS_HRF_ARENA_SIZE);
    return 1;
  }

  TfLiteTensor* input = interpreter.input(0);
  if (input->type != kTfLiteInt8 || input->bytes != KERAS_HRF_INPUT_FRAMES * KERAS_HRF_INPUT_MELS) {
    MicroPrintf("unexpected input tensor: type %d, %d bytes (expected int8, %d bytes)",
                static_cast<int>(input->type), static_cast<int>(input->bytes),
                KERAS_HRF_INPUT_FRAMES * KERAS_HRF_INPUT_MELS);
    return 1;
  }
  ReadInput(input->data.int8, input->bytes);

  if (interpreter.Invoke() != kTfLiteOk) {
    MicroPrintf("Invoke failed");
    return 1;
  }

  const TfLiteTensor* output = interpreter.output(0);
  const int best = ArgMax(output->data.int8, KERAS_HRF_NUM_CLASSES);
  MicroPrintf("predicted: %s (class %d, int8 score %d)", g_model_labels[best], best,
              static_cast<int>(output->data.int8[best]));
  MicroPrintf("arena used: %d of %d bytes", static_cast<int>(interpreter.arena_used_bytes()),
              KERAS_HRF_ARENA_SIZE);
#if defined(KERAS_HRF_SELF_TEST)
  MicroPrintf("expected:  %s (class %d)", kExampleExpectedLabel, kExampleExpectedIndex);
  if (best != kExampleExpectedIndex) return 2;
  // TFLM's test runner (make target test_keras_hrf_ser_test) looks for this line.
  MicroPrintf("~~~ALL TESTS PASSED~~~");
#endif
  return 0;
}
