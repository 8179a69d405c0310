/* Minimal start-up for the QEMU Cortex-M machines the project tests on (mps2-an386 = Cortex-M4F,
 * mps3-an547 = Cortex-M55): the vector table, a reset handler that initialises .data/.bss and the
 * FPU, runs the C++ constructors and main(), and exits through semihosting, which QEMU turns into
 * its own exit status. SysTick counts down from its reload value; the overflow count kept here
 * makes a 64-bit tick counter for micro_time_systick.cc.
 *
 * Real boards use their vendor's start-up instead; nothing else of the firmware depends on this.
 */

#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;
extern int main(int argc, char** argv);
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void);

volatile uint32_t g_systick_overflows = 0;

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

/* A bare-metal link (-nostartfiles) has no crtbegin.o / crti.o: __dso_handle (with which
 * static destructors register) and the _init / _fini hooks of __libc_init_array /
 * __libc_fini_array come from here. The constructors themselves run from .init_array. */
void* __dso_handle = 0;
void _init(void) {}
void _fini(void) {}

__attribute__((section(".vectors"), used)) const void* const g_vectors[16 + 16] = {
    &__stack_top__,
    (void*)Reset_Handler,
    (void*)Default_Handler, /* NMI */
    (void*)HardFault_Handler,
    (void*)HardFault_Handler, /* MemManage */
    (void*)HardFault_Handler, /* BusFault */
    (void*)HardFault_Handler, /* UsageFault */
    (void*)HardFault_Handler, /* SecureFault (v8-M) */
    0,
    0,
    0,
    (void*)Default_Handler, /* SVC */
    (void*)Default_Handler, /* DebugMon */
    0,
    (void*)Default_Handler, /* PendSV */
    (void*)SysTick_Handler,
};

void Reset_Handler(void) {
  uint32_t* src = &__data_load__;
  for (uint32_t* dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  /* CP10/CP11 full access: the FPU (and MVE on the M55). */
  *(volatile uint32_t*)0xE000ED88 |= (0xFu << 20);
  __asm volatile("dsb\n\tisb" ::: "memory");
#endif
  initialise_monitor_handles(); /* semihosting stdin/stdout/stderr of librdimon */
  __libc_init_array();
  exit(main(0, 0));
}

void SysTick_Handler(void) { g_systick_overflows++; }

void HardFault_Handler(void) {
  static const char msg[] = "HardFault\n";
  /* SYS_WRITE0 (0x04), then SYS_EXIT (0x18) with ADP_Stopped_RunTimeErrorUnknown. */
  __asm volatile("mov r0, #4\n\tmov r1, %0\n\tbkpt 0xab" : : "r"(msg) : "r0", "r1", "memory");
  __asm volatile("mov r0, #0x18\n\tldr r1, =0x20023\n\tbkpt 0xab" ::: "r0", "r1", "memory");
  for (;;) {
  }
}

void Default_Handler(void) { HardFault_Handler(); }
