#define _GNU_SOURCE
#include "CIPCShimSharedMemory.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int ipcb_futex_wait(uint32_t *word, uint32_t expected) {
    long result = syscall(SYS_futex, word, FUTEX_WAIT, expected, NULL, NULL, 0);
    return result == 0 ? 0 : errno;
}

int ipcb_futex_wake(uint32_t *word, int count) {
    return (int)syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
}

int ipcb_sem_wait_for(sem_t *semaphore, uint64_t timeout_ns) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    uint64_t nanoseconds = (uint64_t)deadline.tv_nsec + timeout_ns % 1000000000u;
    deadline.tv_sec += (time_t)(timeout_ns / 1000000000u + nanoseconds / 1000000000u);
    deadline.tv_nsec = (long)(nanoseconds % 1000000000u);
    int result;
    do {
        result = sem_clockwait(semaphore, CLOCK_MONOTONIC, &deadline);
    } while (result != 0 && errno == EINTR);
    return result;
}

int ipcb_semop_one(int id, unsigned short index, short delta, short flags, uint64_t timeout_ns) {
    struct sembuf operation = {.sem_num = index, .sem_op = delta, .sem_flg = flags};
    if (timeout_ns == UINT64_MAX) return semop(id, &operation, 1);
    struct timespec timeout = {.tv_sec = (time_t)(timeout_ns / 1000000000u), .tv_nsec = (long)(timeout_ns % 1000000000u)};
    return semtimedop(id, &operation, 1, &timeout);
}

int ipcb_eventfd_cloexec(unsigned int initial) { return eventfd(initial, EFD_CLOEXEC); }

union ipcb_semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

int ipcb_semctl_setval(int id, int index, int value) {
    union ipcb_semun argument;
    argument.val = value;
    return semctl(id, index, SETVAL, argument);
}

int ipcb_semctl_remove(int id) { return semctl(id, 0, IPC_RMID); }

int ipcb_prefault_writable(void *address, size_t length) {
    if (madvise(address, length, MADV_POPULATE_WRITE) == 0) return 0;
    if (errno != EINVAL) return errno;
    long page = sysconf(_SC_PAGESIZE);
    for (size_t offset = 0; offset < length; offset += (size_t)page) {
        __atomic_fetch_add((volatile char *)address + offset, 0, __ATOMIC_RELAXED);
    }
    return 0;
}
