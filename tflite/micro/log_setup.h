// Where TFLM's log (MicroPrintf) goes, for the keras-hrf applications (main.cc, audio_main.cc,
// harness.cc).
//
// On TFLM's cortex_m_generic target (what most vendor SDKs build), DebugLog() prints nothing
// until the application registers a callback; KerasHrfSetupLog() registers one that writes to
// stdout (semihosting under QEMU, the vendor's retargeted UART on a board). On other targets
// (host, targets with their own DebugLog) it does nothing. Define KERAS_HRF_NO_LOG_CALLBACK to
// register your own callback instead.

#ifndef KERAS_HRF_LOG_SETUP_H_
#define KERAS_HRF_LOG_SETUP_H_

#include <cstdio>

#if !defined(KERAS_HRF_NO_LOG_CALLBACK) && defined(__ARM_ARCH_PROFILE) && \
    (__ARM_ARCH_PROFILE == 'M') &&                                           \
    __has_include("tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h")
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#define KERAS_HRF_LOG_CALLBACK 1
#endif

namespace keras_hrf {

#if defined(KERAS_HRF_LOG_CALLBACK)
inline void LogToStdout(const char* s) {
  std::fputs(s, stdout);
  std::fflush(stdout);
}
#endif

// Call first in main(), before anything can log.
inline void SetupLog() {
#if defined(KERAS_HRF_LOG_CALLBACK)
  RegisterDebugLogCallback(LogToStdout);
#endif
}

}  // namespace keras_hrf

#endif  // KERAS_HRF_LOG_SETUP_H_
