// Shim declarations for the SharedMemory mechanisms (implemented in ../sharedmemory.c).
//
// The ring's indices live in shared memory and are shared by two processes, so they are accessed
// with C11 __atomic builtins on the mapped words (never a heap atomic). These are static inline so
// the Swift timed loops compile them to plain loads/stores (x86: mov; seq_cst store: xchg).
#pragma once

#include <semaphore.h>

#include <stddef.h>
#include <stdint.h>

static inline uint32_t ipcb_load_relaxed_u32(uint32_t *word) { return __atomic_load_n(word, __ATOMIC_RELAXED); }
static inline uint32_t ipcb_load_acquire_u32(uint32_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
static inline uint32_t ipcb_load_seq_cst_u32(uint32_t *word) { return __atomic_load_n(word, __ATOMIC_SEQ_CST); }
static inline void ipcb_store_relaxed_u32(uint32_t *word, uint32_t value) { __atomic_store_n(word, value, __ATOMIC_RELAXED); }
static inline void ipcb_store_release_u32(uint32_t *word, uint32_t value) { __atomic_store_n(word, value, __ATOMIC_RELEASE); }
static inline void ipcb_store_seq_cst_u32(uint32_t *word, uint32_t value) { __atomic_store_n(word, value, __ATOMIC_SEQ_CST); }

/// One pause step in a busy-wait loop (x86 PAUSE, arm64 YIELD): eases the sibling hyperthread and
/// the memory-order pipeline flush when the awaited line changes.
static inline void ipcb_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/// futex(FUTEX_WAIT) on a word shared between processes (not FUTEX_PRIVATE): sleeps while *word ==
/// expected. Returns 0 when woken, else an errno value (EAGAIN: the word had changed; EINTR).
int ipcb_futex_wait(uint32_t *word, uint32_t expected);
/// futex(FUTEX_WAKE): wakes up to `count` waiters. Returns the number woken or -1 with errno.
int ipcb_futex_wake(uint32_t *word, int count);

/// sem_clockwait on CLOCK_MONOTONIC for up to `timeout_ns`, retried on EINTR. Returns 0 or -1
/// with errno (ETIMEDOUT when the time passed).
int ipcb_sem_wait_for(sem_t *semaphore, uint64_t timeout_ns);
/// One semop on semaphore `index` of set `id` by `delta` with `flags` (IPC_NOWAIT or 0), bounded by
/// `timeout_ns` (semtimedop) unless it is UINT64_MAX. Returns 0 or -1 with errno (EAGAIN: would
/// block under IPC_NOWAIT, or the timeout passed).
int ipcb_semop_one(int id, unsigned short index, short delta, short flags, uint64_t timeout_ns);

/// eventfd(initial, EFD_CLOEXEC) (<sys/eventfd.h> is not in Swift's Glibc module).
/// Returns the descriptor or -1 with errno.
int ipcb_eventfd_cloexec(unsigned int initial);

/// semctl(id, index, SETVAL, value) (semctl is variadic with a union semun argument).
/// Returns 0 or -1 with errno.
int ipcb_semctl_setval(int id, int index, int value);
/// semctl(id, 0, IPC_RMID). Returns 0 or -1 with errno.
int ipcb_semctl_remove(int id);

/// Faults every page of [address, address + length) in writable, without changing its contents
/// (both workers do this concurrently on the same segment): madvise(MADV_POPULATE_WRITE), or on
/// kernels before 5.14 an atomic add of 0 to one byte per page. Returns 0 or an errno value.
int ipcb_prefault_writable(void *address, size_t length);
