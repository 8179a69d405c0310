// TFLM's clock on the QEMU Cortex-M machines: SysTick, which QEMU advances with the virtual clock.
// With `-icount shift=0` QEMU's virtual clock advances one nanosecond per instruction, so a tick
// count converts to instructions (keras_hrf.device.firmware calibrates the ratio); the profiler
// then reports instructions per op. QEMU does not model the DWT cycle counter that TFLM's
// cortex_m_generic clock reads.

#include <cstdint>

#include "tensorflow/lite/micro/micro_time.h"

extern "C" volatile uint32_t g_systick_overflows;

namespace {

constexpr uint32_t kReload = 0x00FFFFFF;  // 24-bit counter
volatile uint32_t* const kSysTickCtrl = reinterpret_cast<volatile uint32_t*>(0xE000E010);
volatile uint32_t* const kSysTickLoad = reinterpret_cast<volatile uint32_t*>(0xE000E014);
volatile uint32_t* const kSysTickVal = reinterpret_cast<volatile uint32_t*>(0xE000E018);
volatile uint32_t* const kIcsr = reinterpret_cast<volatile uint32_t*>(0xE000ED04);
constexpr uint32_t kPendStSet = 1u << 26;  // ICSR.PENDSTSET: a SysTick exception is pending

}  // namespace

extern "C" void KerasHrfStartTicks() {
  *kSysTickLoad = kReload;
  *kSysTickVal = 0;     // clears the counter; it reloads on the next tick without an exception
  *kSysTickCtrl = 0x7;  // processor clock, interrupt on wrap (counts overflows), enable
  while (*kSysTickVal == 0) {
  }
}

// 64-bit tick count since KerasHrfStartTicks(), consistent across a wrap: a wrap whose
// exception is still pending (lo just reloaded, the handler not yet run) is counted here.
extern "C" uint64_t KerasHrfTicks64() {
  uint32_t hi, lo, pending;
  do {
    hi = g_systick_overflows;
    lo = *kSysTickVal;
    pending = *kIcsr & kPendStSet;
  } while (hi != g_systick_overflows);
  if (pending && lo > kReload / 2) ++hi;
  return static_cast<uint64_t>(hi) * (kReload + 1ull) + (kReload - lo);
}

namespace tflite {

uint32_t ticks_per_second() { return 0; }  // virtual time: instructions, not seconds

uint32_t GetCurrentTimeTicks() { return static_cast<uint32_t>(KerasHrfTicks64()); }

}  // namespace tflite
