// Thin C shim for what Swift cannot call directly: GNU-only functions, macros and variadics.
#ifndef CIPCSHIM_H
#define CIPCSHIM_H

#include <spawn.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/// Pins the calling process to one CPU. Returns 0 or an errno value.
int ipcb_pin_to_cpu(int cpu);
/// Sets the calling thread's affinity to `count` CPUs. Returns 0 or an errno value.
int ipcb_set_affinity(const int *cpus, int count);
/// The CPU the caller is running on now (sched_getcpu), or -1.
int ipcb_current_cpu(void);
/// Number of CPUs in the caller's affinity mask, and the first `capacity` of them into `cpus`.
int ipcb_allowed_cpus(int *cpus, int capacity);
/// Asks the kernel to send `sig` to the caller when its parent dies (prctl PR_SET_PDEATHSIG).
int ipcb_set_parent_death_signal(int sig);
/// pipe2 with O_CLOEXEC. Returns 0 or -1 with errno.
int ipcb_pipe_cloexec(int fds[2]);
/// fcntl(F_SETPIPE_SZ) / fcntl(F_GETPIPE_SZ).
int ipcb_set_pipe_size(int fd, int bytes);
int ipcb_pipe_size(int fd);
/// posix_spawn_file_actions_addclosefrom_np: closes every fd >= lowfd in the child.
int ipcb_spawn_close_from(posix_spawn_file_actions_t *actions, int lowfd);

/// A new epoll instance (close-on-exec) watching `fd` for readability, or for writability when
/// `writable` is non-zero (<sys/epoll.h> is not part of Swift's Glibc module). Returns it or -1 with errno.
int ipcb_epoll_watching(int fd, int writable);
/// epoll_wait for one event, up to `timeout_ms` (-1: no timeout). Returns the epoll_wait result
/// (0 on timeout, -1 with errno).
int ipcb_epoll_wait_one(int epoll, int timeout_ms);
/// A new, empty epoll instance (close-on-exec), or -1 with errno.
int ipcb_epoll_create(void);
/// Adds `fd` to `epoll` for readability, reported with `key` (ipcb_epoll_wait_keys).
int ipcb_epoll_add(int epoll, int fd, unsigned long long key);
int ipcb_epoll_remove(int epoll, int fd);
/// epoll_wait for up to `capacity` (at most 64) ready descriptors; writes their keys to `keys` and
/// returns how many, or -1 with errno.
int ipcb_epoll_wait_keys(int epoll, unsigned long long *keys, int capacity, int timeout_ms);

/// Signal-driven I/O on `fd` for the calling thread: SIGIO is blocked in this thread (so it stays
/// pending for sigwaitinfo instead of ending the process), `fd` is owned by this thread
/// (F_SETOWN_EX, F_OWNER_TID: no other thread receives it) and made O_ASYNC | O_NONBLOCK.
/// Returns 0 or -1 with errno.
int ipcb_signal_driven_io(int fd);
/// Waits for SIGIO up to `timeout_ms` (-1: sigwaitinfo, no timeout). Returns 0, or -1 with errno
/// (EAGAIN: the timeout passed; EINTR: another signal arrived).
int ipcb_wait_sigio(int timeout_ms);

/// semctl(id, 0, IPC_RMID): removes a System V semaphore set (semctl is variadic).
int ipcb_remove_semaphore_set(int id);

/// Wait-status decoding (the W* macros are not imported into Swift).
int ipcb_exited(int status);
int ipcb_exit_code(int status);
int ipcb_signaled(int status);
int ipcb_term_signal(int status);

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC), shared by all processes of one host.
/// Inline so the timed loops pay only the vDSO call.
static inline uint64_t ipcb_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/// The CPU's time-stamp counter, for the latency loops (LoopClock), or 0 where there is none.
/// Plain RDTSC (~7 ns here; RDTSCP and LFENCE+RDTSC ~10 ns more): a read that follows a wait is
/// still ordered after it, because the wait ends in a mispredicted loop exit (spin) or a system call,
/// and nothing after those executes before they resolve.
static inline uint64_t ipcb_read_tsc(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    return 0;
#endif
}

// Mechanism-family shims live in their own headers, included here so `import CIPCShim` sees them.
#include "CIPCShimQueues.h"
#include "CIPCShimSharedMemory.h"
#include "CIPCShimKernelCopy.h"
#include "CIPCShimSignals.h"
#include "CIPCShimUring.h"

#endif
