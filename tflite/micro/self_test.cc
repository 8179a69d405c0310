// main.cc as a self-test of the build: runs the model on the export's example window
// (example_input.h) and exits 0 only if TFLM on this target predicts the label the Python TFLM
// interpreter gave it (printing TFLM's "~~~ALL TESTS PASSED~~~").
#define KERAS_HRF_SELF_TEST 1
#include "main.cc"
