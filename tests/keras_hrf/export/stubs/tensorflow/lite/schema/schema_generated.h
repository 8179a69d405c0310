// Stub of tensorflow/lite/schema/schema_generated.h for compile tests (declarations only).
#ifndef KERAS_HRF_STUB_SCHEMA_GENERATED_H_
#define KERAS_HRF_STUB_SCHEMA_GENERATED_H_

#include <cstdint>

namespace tflite {
struct Model {
  uint32_t version() const;
};
inline const Model* GetModel(const void* buf) { return static_cast<const Model*>(buf); }
}  // namespace tflite

#endif  // KERAS_HRF_STUB_SCHEMA_GENERATED_H_
