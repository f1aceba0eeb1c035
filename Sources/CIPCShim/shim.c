#define _GNU_SOURCE
#include "CIPCShim.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

int ipcb_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : errno;
}

int ipcb_set_affinity(const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) CPU_SET(cpus[i], &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : errno;
}

int ipcb_current_cpu(void) { return sched_getcpu(); }

int ipcb_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (n < capacity) cpus[n] = cpu;
        n++;
    }
    return n;
}

int ipcb_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

int ipcb_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int ipcb_set_pipe_size(int fd, int bytes) { return fcntl(fd, F_SETPIPE_SZ, bytes); }
int ipcb_pipe_size(int fd) { return fcntl(fd, F_GETPIPE_SZ); }

int ipcb_spawn_close_from(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

int ipcb_exited(int status) { return WIFEXITED(status); }
int ipcb_exit_code(int status) { return WEXITSTATUS(status); }
int ipcb_signaled(int status) { return WIFSIGNALED(status); }
int ipcb_term_signal(int status) { return WTERMSIG(status); }

int ipcb_remove_semaphore_set(int id) { return semctl(id, 0, IPC_RMID); }

int ipcb_epoll_watching(int fd, int writable) {
    int instance = epoll_create1(EPOLL_CLOEXEC);
    if (instance < 0) return -1;
    struct epoll_event event = {.events = writable ? EPOLLOUT : EPOLLIN, .data.fd = fd};
    if (epoll_ctl(instance, EPOLL_CTL_ADD, fd, &event) != 0) {
        int saved = errno;
        close(instance);
        errno = saved;
        return -1;
    }
    return instance;
}

int ipcb_epoll_wait_one(int epoll, int timeout_ms) {
    struct epoll_event event;
    return epoll_wait(epoll, &event, 1, timeout_ms);
}

int ipcb_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int ipcb_epoll_add(int epoll, int fd, unsigned long long key) {
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = key};
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

int ipcb_epoll_remove(int epoll, int fd) {
    struct epoll_event unused;
    return epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &unused);
}

int ipcb_epoll_wait_keys(int epoll, unsigned long long *keys, int capacity, int timeout_ms) {
    struct epoll_event events[64];
    int count = epoll_wait(epoll, events, capacity < 64 ? capacity : 64, timeout_ms);
    for (int index = 0; index < count; index++) keys[index] = events[index].data.u64;
    return count;
}

int ipcb_signal_driven_io(int fd) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    int failed = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (failed != 0) {
        errno = failed;
        return -1;
    }
    struct f_owner_ex owner = {.type = F_OWNER_TID, .pid = (pid_t)syscall(SYS_gettid)};
    if (fcntl(fd, F_SETOWN_EX, &owner) != 0) return -1;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_ASYNC | O_NONBLOCK);
}

int ipcb_wait_sigio(int timeout_ms) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    if (timeout_ms < 0) return sigwaitinfo(&set, NULL) < 0 ? -1 : 0;
    struct timespec timeout = {.tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000L};
    return sigtimedwait(&set, NULL, &timeout) < 0 ? -1 : 0;
}
