// keras-hrf firmware test harness: runs the exported int8 model on N quantized inputs read from
// a file (raw int8, the input tensor's bytes one input after another; on the QEMU machines the
// file is read over semihosting, so inputs take no flash) and prints, per input, the int8 outputs and the ticks of Invoke(); then the
// ticks per op type (TFLM's profiler hooks), the arena actually used and, on Cortex-M, the stack
// high-water mark. keras_hrf.device.firmware builds it for the host and the QEMU Cortex-M
// machines and compares the outputs with the Python TFLM interpreter (they must be identical).
//
// Every result line starts with "KERAS_HRF " so that the parser ignores anything else TFLM
// prints. Exit status: 0 on success, 1 on a TFLM error (e.g. an arena too small: TFLM says so).
// Debug defines (APP_DEFINES): KERAS_HRF_HARNESS_TRACE prints each op as it starts (where an
// abort happens); KERAS_HRF_HARNESS_EVENTS prints each op invocation's ticks ("KERAS_HRF event
// CONV_2D 120711"), to see which layer of an op type costs.

#include <cstdint>
#if !defined(KERAS_HRF_CORTEX_M)
#include <chrono>
#endif
#include <cstdio>
#include <cstring>

#include "log_setup.h"
#include "model_data.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/micro/micro_time.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

#if defined(KERAS_HRF_CORTEX_M)
extern "C" void KerasHrfStartTicks();
extern "C" uint64_t KerasHrfTicks64();
extern "C" uint32_t __stack_bottom__;
extern "C" uint32_t __stack_top__;
#endif

// The inputs file: argv[1] where there is a command line (host), else this path (relative to the
// emulator's working directory under semihosting).
#ifndef KERAS_HRF_HARNESS_INPUTS
#define KERAS_HRF_HARNESS_INPUTS "harness_inputs.bin"
#endif

#ifndef KERAS_HRF_HARNESS_ARENA_SIZE
#define KERAS_HRF_HARNESS_ARENA_SIZE KERAS_HRF_ARENA_SIZE
#endif

namespace {

alignas(16) uint8_t g_arena[KERAS_HRF_HARNESS_ARENA_SIZE];

// SysTick on Cortex-M (instructions under QEMU -icount); nanoseconds on the host.
uint64_t Ticks() {
#if defined(KERAS_HRF_CORTEX_M)
  return KerasHrfTicks64();
#else
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
#endif
}

// Decimal text of a 64-bit count (newlib-nano's printf has no %llu).
const char* U64(uint64_t v, char (&buf)[24]) {
  char* p = buf + sizeof(buf) - 1;
  *p = '\0';
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return p;
}

// Sums the ticks of every op invocation by op name (no per-event buffer: a model with hundreds
// of ops over many inputs needs none).
class TagProfiler : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
#if defined(KERAS_HRF_HARNESS_TRACE)
    std::printf("KERAS_HRF begin %s\n", tag);  // which op an abort() or a fault happens in
#endif
    open_tag_ = tag;
    open_start_ = Ticks();
    return 0;
  }
  void EndEvent(uint32_t) override {
    const uint64_t ticks = Ticks() - open_start_;
#if defined(KERAS_HRF_HARNESS_EVENTS)
    char ev[24];
    std::printf("KERAS_HRF event %s %s\n", open_tag_, U64(ticks, ev));  // per op instance
#endif
    for (int i = 0; i < count_; ++i) {
      if (std::strcmp(tags_[i], open_tag_) == 0) {
        ticks_[i] += ticks;
        return;
      }
    }
    if (count_ < kMaxTags) {
      tags_[count_] = open_tag_;
      ticks_[count_++] = ticks;
    }
  }
  void Print() const {
    for (int i = 0; i < count_; ++i) {
      char buf[24];
      std::printf("KERAS_HRF op %s %s\n", tags_[i], U64(ticks_[i], buf));
    }
  }

 private:
  static constexpr int kMaxTags = 64;
  const char* tags_[kMaxTags] = {};
  uint64_t ticks_[kMaxTags] = {};
  int count_ = 0;
  const char* open_tag_ = nullptr;
  uint64_t open_start_ = 0;
};

TagProfiler g_profiler;

#if defined(KERAS_HRF_CORTEX_M)
constexpr uint32_t kStackPaint = 0xA5A5A5A5u;

// Paints the unused stack below the current stack pointer, to find the high-water mark later.
void PaintStack() {
  uint32_t here;
  for (uint32_t* p = &__stack_bottom__; p < &here - 64; ++p) *p = kStackPaint;
}

// Bytes of stack ever used: from the top down to the lowest word that lost its paint.
uint32_t StackUsed() {
  uint32_t* p = &__stack_bottom__;
  while (p < &__stack_top__ && *p == kStackPaint) ++p;
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&__stack_top__) -
                               reinterpret_cast<uintptr_t>(p));
}

// Instructions per SysTick tick under QEMU -icount shift=0 (one instruction per virtual ns):
// a loop of exactly two instructions per iteration, timed.
void Calibrate() {
  const uint32_t iterations = 1000000;
  const uint64_t t0 = KerasHrfTicks64();
  __asm volatile(
      "mov r0, %0\n"
      "1: subs r0, r0, #1\n"
      "bne 1b\n"
      :
      : "r"(iterations)
      : "r0", "cc");
  const uint64_t t1 = KerasHrfTicks64();
  char buf[24];
  std::printf("KERAS_HRF calibration %lu %s\n", static_cast<unsigned long>(2 * iterations),
              U64(t1 - t0, buf));
}
#endif

}  // namespace

int main(int argc, char* argv[]) {
  const char* inputs_path = argc > 1 ? argv[1] : KERAS_HRF_HARNESS_INPUTS;
  // Line-buffered: what was printed before an abort() inside TFLM is not lost.
  std::setvbuf(stdout, nullptr, _IOLBF, 256);
  keras_hrf::SetupLog();
#if defined(KERAS_HRF_CORTEX_M)
  PaintStack();
  KerasHrfStartTicks();
  Calibrate();
#endif
  tflite::InitializeTarget();
  const tflite::Model* model = tflite::GetModel(g_model_data);
  bool resolver_ok = false;
  KerasHrfOpResolver& resolver = GetKerasHrfOpResolver(&resolver_ok);
  if (!resolver_ok) {
    std::printf("KERAS_HRF error could not register the model's ops\n");
    return 1;
  }
  tflite::MicroInterpreter interpreter(model, resolver, g_arena, sizeof(g_arena), nullptr,
                                       &g_profiler);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    std::printf("KERAS_HRF error AllocateTensors failed with an arena of %d bytes\n",
                static_cast<int>(sizeof(g_arena)));
    return 1;
  }
  std::printf("KERAS_HRF arena_used %d\n", static_cast<int>(interpreter.arena_used_bytes()));
  TfLiteTensor* input = interpreter.input(0);
  const TfLiteTensor* output = interpreter.output(0);
  std::FILE* inputs = std::fopen(inputs_path, "rb");
  if (inputs == nullptr) {
    std::printf("KERAS_HRF error cannot open the inputs file %s\n", inputs_path);
    return 1;
  }
  int n = 0;
  for (;; ++n) {
    const size_t got = std::fread(input->data.int8, 1, input->bytes, inputs);
    if (got == 0) break;
    if (got != input->bytes) {
      std::printf("KERAS_HRF error input %d has %d bytes, the input tensor %d\n", n,
                  static_cast<int>(got), static_cast<int>(input->bytes));
      return 1;
    }
    const uint64_t t0 = Ticks();
    if (interpreter.Invoke() != kTfLiteOk) {
      std::printf("KERAS_HRF error Invoke failed on input %d\n", n);
      return 1;
    }
    const uint64_t t1 = Ticks();
    char buf[24];
    std::printf("KERAS_HRF ticks %d %s\n", n, U64(t1 - t0, buf));
    std::printf("KERAS_HRF output %d", n);
    for (size_t k = 0; k < output->bytes; ++k) std::printf(" %d", output->data.int8[k]);
    std::printf("\n");
  }
  std::fclose(inputs);
  std::printf("KERAS_HRF inputs %d\n", n);
  g_profiler.Print();
#if defined(KERAS_HRF_CORTEX_M)
  std::printf("KERAS_HRF stack_used %lu\n",
              static_cast<unsigned long>(StackUsed()));
#endif
  std::printf("KERAS_HRF done\n");
  return 0;
}
