// Shim declarations for the real-time signal mechanism (implemented in ../signals.c).
//
// SIGRTMIN is a function-like macro, and siginfo_t's si_pid / si_value / si_code are macros over
// unions, none of which Swift imports; sigset manipulation is wrapped with them.
#pragma once

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/// SIGRTMIN as the C library defines it for this process (glibc reserves the first few for itself).
int ipcb_sigrtmin(void);
int ipcb_sigrtmax(void);
/// Fills `set` with exactly one signal. Returns 0 or -1 with errno.
int ipcb_sigset_single(sigset_t *set, int sig);
/// Adds `sig` to the calling thread's blocked mask (pthread_sigmask SIG_BLOCK). Returns 0 or an errno value.
int ipcb_block_signal(int sig);
/// sigqueue(pid, sig, {.sival_ptr = value}): a queued real-time signal carrying 8 bytes.
/// Returns 0 or -1 with errno.
int ipcb_sigqueue_value(pid_t pid, int sig, uint64_t value);
/// sigwaitinfo on `set`, retried on EINTR: returns the signal number and stores the carried value,
/// the sender's pid and si_code, or -1 with errno.
int ipcb_sigwait_value(const sigset_t *set, uint64_t *value, pid_t *sender, int *code);
/// si_code of a signal sent with sigqueue (SI_QUEUE).
int ipcb_si_queue_code(void);
/// The soft RLIMIT_SIGPENDING (queued signals per user; an enum constant Swift imports awkwardly), or -1 when unlimited.
long long ipcb_pending_signal_limit(void);
/// A signalfd (non-blocking, close-on-exec) reporting the signals in `set`, which must stay blocked.
/// Returns it or -1 with errno.
int ipcb_signalfd(const sigset_t *set);
/// Reads one signal from a signalfd, retried on EINTR: returns 1 and stores the carried value, the
/// sender's pid and si_code; 0 when none is pending (EAGAIN); -1 with errno on failure.
int ipcb_signalfd_read_value(int fd, uint64_t *value, pid_t *sender, int *code);
