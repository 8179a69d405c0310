// Stub of CMSIS-DSP's arm_math.h for compile tests (declarations only): the MFCC part that
// tflite/micro/audio_main.cc uses, with CMSIS-DSP's signatures.
#ifndef KERAS_HRF_STUB_ARM_MATH_H_
#define KERAS_HRF_STUB_ARM_MATH_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef float float32_t;
typedef int16_t q15_t;
typedef int32_t q31_t;

typedef enum { ARM_MATH_SUCCESS = 0, ARM_MATH_ARGUMENT_ERROR = -1 } arm_status;

typedef struct {
  const float32_t* dctCoefs;
  const float32_t* filterCoefs;
  const float32_t* windowCoefs;
  const uint32_t* filterPos;
  const uint32_t* filterLengths;
  uint32_t fftLen;
  uint32_t nbMelFilters;
  uint32_t nbDctOutputs;
} arm_mfcc_instance_f32;

arm_status arm_mfcc_init_f32(arm_mfcc_instance_f32* S, uint32_t fftLen, uint32_t nbMelFilters,
                             uint32_t nbDctOutputs, const float32_t* dctCoefs,
                             const uint32_t* filterPos, const uint32_t* filterLengths,
                             const float32_t* filterCoefs, const float32_t* windowCoefs);

void arm_mfcc_f32(const arm_mfcc_instance_f32* S, float32_t* pSrc, float32_t* pDst,
                  float32_t* pTmp);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // KERAS_HRF_STUB_ARM_MATH_H_
