#define _GNU_SOURCE
#include "CIPCShimSignals.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

int ipcb_sigrtmin(void) { return SIGRTMIN; }

int ipcb_sigrtmax(void) { return SIGRTMAX; }

int ipcb_sigset_single(sigset_t *set, int sig) {
    if (sigemptyset(set) != 0) return -1;
    return sigaddset(set, sig);
}

int ipcb_block_signal(int sig) {
    sigset_t set;
    if (ipcb_sigset_single(&set, sig) != 0) return errno;
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int ipcb_sigqueue_value(pid_t pid, int sig, uint64_t value) {
    union sigval carried;
    carried.sival_ptr = (void *)(uintptr_t)value;
    return sigqueue(pid, sig, carried);
}

int ipcb_sigwait_value(const sigset_t *set, uint64_t *value, pid_t *sender, int *code) {
    siginfo_t info;
    int sig;
    do {
        sig = sigwaitinfo(set, &info);
    } while (sig < 0 && errno == EINTR);
    if (sig < 0) return -1;
    *value = (uint64_t)(uintptr_t)info.si_value.sival_ptr;
    *sender = info.si_pid;
    *code = info.si_code;
    return sig;
}

int ipcb_si_queue_code(void) { return SI_QUEUE; }

long long ipcb_pending_signal_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_SIGPENDING, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return -1;
    return (long long)limit.rlim_cur;
}

int ipcb_signalfd(const sigset_t *set) { return signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC); }

int ipcb_signalfd_read_value(int fd, uint64_t *value, pid_t *sender, int *code) {
    struct signalfd_siginfo info;
    ssize_t count;
    do {
        count = read(fd, &info, sizeof info);
    } while (count < 0 && errno == EINTR);
    if (count < 0) return errno == EAGAIN ? 0 : -1;
    if (count != (ssize_t)sizeof info) {
        errno = EIO;
        return -1;
    }
    *value = info.ssi_ptr;
    *sender = (pid_t)info.ssi_pid;
    *code = info.ssi_code;
    return 1;
}
