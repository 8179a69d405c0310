// Stub of tensorflow/lite/micro/system_setup.h for compile tests (declarations only).
#ifndef KERAS_HRF_STUB_SYSTEM_SETUP_H_
#define KERAS_HRF_STUB_SYSTEM_SETUP_H_

namespace tflite {
void InitializeTarget();
}  // namespace tflite

#endif  // KERAS_HRF_STUB_SYSTEM_SETUP_H_
