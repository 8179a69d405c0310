// Stub of TFLM's tensorflow/lite/c/common.h for compile tests (declarations only).
#ifndef KERAS_HRF_STUB_COMMON_H_
#define KERAS_HRF_STUB_COMMON_H_

#include <cstddef>
#include <cstdint>

typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt32 = 2, kTfLiteInt8 = 9 } TfLiteType;

typedef struct TfLiteQuantizationParams {
  float scale;
  int32_t zero_point;
} TfLiteQuantizationParams;

typedef struct TfLiteIntArray {
  int size;
  int data[1];
} TfLiteIntArray;

typedef union TfLitePtrUnion {
  int32_t* i32;
  float* f;
  int8_t* int8;
  void* data;
} TfLitePtrUnion;

typedef struct TfLiteTensor {
  TfLiteType type;
  TfLitePtrUnion data;
  TfLiteIntArray* dims;
  TfLiteQuantizationParams params;
  size_t bytes;
} TfLiteTensor;

#endif  // KERAS_HRF_STUB_COMMON_H_
