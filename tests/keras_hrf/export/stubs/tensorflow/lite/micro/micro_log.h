// Stub of tensorflow/lite/micro/micro_log.h for compile tests (declarations only).
#ifndef KERAS_HRF_STUB_MICRO_LOG_H_
#define KERAS_HRF_STUB_MICRO_LOG_H_

void MicroPrintf(const char* format, ...);

#endif  // KERAS_HRF_STUB_MICRO_LOG_H_
