/* common.h - what the C yardsticks of scripts/compare-with-c share: ipcbench's message layout and
 * per-message work, pinning, clocks, and the start-up barrier of a producer/consumer process pair.
 *
 * The per-message work mirrors ipcbench's defaults (--produce write --touch read; see the README's
 * "What it measures" and Sources/IPCBench/Harness/MessageFormat.swift):
 *   - bytes 0-7 of a message: sequence number (UInt64 LE); bytes 8-15: send time; payload from 16;
 *   - the producer writes every payload byte of every message: 8-byte word i of message s (from
 *     offset 16) = (s * 0x9E3779B97F4A7C15) ^ i, a trailing byte at offset o = low byte of (s + o);
 *   - the consumer reads every byte of every message once, as a sum of 8-byte words (header included);
 *   - a latency reply carries the request's sequence | (1 << 62) and its send time; the end of a run
 *     is a full-size message whose sequence is (1 << 63) | the number of timed messages.
 *
 * Every program starts a consumer and a producer process (fork, no exec), each pinned to its CPU and
 * checked with sched_getcpu() before and after its timed loop; the parent waits until both are ready
 * (their endpoints open, memory touched), lets both go at once, and reaps them, as ipcbench does.
 */
#ifndef IPCBENCH_C_COMMON_H
#define IPCBENCH_C_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#define PATTERN_MULTIPLIER 0x9E3779B97F4A7C15ull
#define REPLY_FLAG (1ull << 62)
#define END_MARKER (1ull << 63)
#define HEADER_BYTES 16

static inline void fail(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, format, arguments);
    if (errno)
        fprintf(stderr, ": %s", strerror(errno));
    fputc('\n', stderr);
    va_end(arguments);
    exit(1);
}

static inline uint64_t parse_count(const char *text, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || *end || end == text)
        fail("%s '%s' is not a whole number", what, text);
    return value;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The latency loops' clock: the TSC where ipcbench uses it (its "latency_clock": clocksource tsc with
 * constant_tsc and nonstop_tsc), else CLOCK_MONOTONIC. compare-with-c passes ipcbench's choice. */
static int use_tsc;

static inline void choose_clock(const char *name)
{
    if (strcmp(name, "tsc") == 0) {
#if defined(__x86_64__) || defined(__i386__)
        use_tsc = 1;
#else
        errno = 0;
        fail("CLOCK tsc needs x86");
#endif
    } else if (strcmp(name, "mono") == 0) {
        use_tsc = 0;
    } else {
        errno = 0;
        fail("CLOCK must be tsc or mono, not '%s'", name);
    }
}

static inline uint64_t loop_clock(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (use_tsc)
        return __rdtsc();
#endif
    return now_ns();
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ipcbench's spinning waiters (SpinNotifier.pause): PAUSES pauses per poll, and a sched_yield once 256
 * have passed (a pause-free poll counts as one), so a spinner sharing its CPU lets the peer run. */
static int pauses_per_poll = 1;

static inline void spin_pause(int *spins)
{
    for (int i = 0; i < pauses_per_poll; i++)
        cpu_relax();
    *spins += pauses_per_poll > 1 ? pauses_per_poll : 1;
    if (*spins >= 256) {
        sched_yield();
        *spins = 0;
    }
}

static inline void put_header(unsigned char *message, uint64_t sequence, uint64_t sent_at)
{
    memcpy(message, &sequence, 8);
    memcpy(message + 8, &sent_at, 8);
}

static inline uint64_t sequence_of(const unsigned char *message)
{
    uint64_t sequence;
    memcpy(&sequence, message, 8);
    return sequence;
}

static inline uint64_t sent_at_of(const unsigned char *message)
{
    uint64_t sent_at;
    memcpy(&sent_at, message + 8, 8);
    return sent_at;
}

/* --produce write: every payload byte of message `sequence`. */
static inline void write_payload(unsigned char *message, size_t size, uint64_t sequence)
{
    size_t words = (size - HEADER_BYTES) / 8;
    uint64_t base = sequence * PATTERN_MULTIPLIER;
    unsigned char *payload = message + HEADER_BYTES;
    for (size_t i = 0; i < words; i++) {
        uint64_t word = base ^ (uint64_t)i;
        memcpy(payload + 8 * i, &word, 8);
    }
    for (size_t offset = HEADER_BYTES + words * 8; offset < size; offset++)
        message[offset] = (unsigned char)(sequence + offset);
}

/* --touch read: every byte of the message once, folded into a checksum. */
static inline uint64_t read_all(const unsigned char *message, size_t size)
{
    size_t words = size / 8;
    uint64_t sum = 0;
    for (size_t i = 0; i < words; i++) {
        uint64_t word;
        memcpy(&word, message + 8 * i, 8);
        sum += word;
    }
    for (size_t offset = words * 8; offset < size; offset++)
        sum += message[offset];
    return sum;
}

/* A private buffer as ipcbench allocates one: 64-byte aligned, every page touched up front. */
static inline unsigned char *private_buffer(size_t size)
{
    size_t rounded = (size + 63) / 64 * 64;
    unsigned char *buffer = aligned_alloc(64, rounded ? rounded : 64);
    if (!buffer)
        fail("aligned_alloc(%zu)", size);
    memset(buffer, 0, rounded);
    return buffer;
}

/* Zero-filled memory shared by the parent and both children (MAP_SHARED | MAP_ANONYMOUS: shmem, as
 * POSIX shared memory is). */
static inline void *shared_region(size_t bytes)
{
    void *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        fail("mmap(%zu)", bytes);
    return region;
}

/* Faults every page of a shared region in, writable, in this process (ipcbench's workers do
 * madvise(MADV_POPULATE_WRITE) on the segment), so no page fault lands in the timed loop. */
static inline void prefault(void *region, size_t bytes)
{
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
    if (madvise(region, bytes, MADV_POPULATE_WRITE) == 0)
        return;
    long page = sysconf(_SC_PAGESIZE);
    for (size_t offset = 0; offset < bytes; offset += (size_t)page)
        __atomic_fetch_add((unsigned char *)region + offset, 0, __ATOMIC_RELAXED);
}

static inline void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        fail("sched_setaffinity(CPU %d)", cpu);
    if (sched_getcpu() != cpu) {
        errno = 0;
        fail("pinned to CPU %d but running on %d", cpu, sched_getcpu());
    }
}

static inline void check_still_on(int cpu)
{
    if (sched_getcpu() != cpu) {
        errno = 0;
        fail("moved off CPU %d during the timed loop (now on %d)", cpu, sched_getcpu());
    }
}

/* Start-up barrier: each child says it is ready on `ready`, then blocks on `go` until the parent has
 * heard from both; the consumer may also say "listening" first (a socket bound before the producer
 * connects). */
struct barrier {
    int ready[2];
    int go[2];
};

static inline void barrier_init(struct barrier *barrier)
{
    if (pipe(barrier->ready) != 0 || pipe(barrier->go) != 0)
        fail("pipe");
}

static inline void barrier_signal(struct barrier *barrier)
{
    if (write(barrier->ready[1], "r", 1) != 1)
        fail("write(barrier)");
}

static inline void barrier_wait_go(struct barrier *barrier)
{
    char byte;
    if (read(barrier->go[0], &byte, 1) != 1)
        fail("read(barrier)");
}

/* Parent: waits for `count` ready signals; returns 0 if one of the children started so far (a list
 * ending in 0) exited first, leaving it to be reaped. */
static inline int barrier_collect(struct barrier *barrier, int count, const pid_t *children)
{
    struct pollfd ready = {.fd = barrier->ready[0], .events = POLLIN};
    while (count > 0) {
        int polled = poll(&ready, 1, 100);
        if (polled < 0 && errno != EINTR)
            fail("poll(barrier)");
        if (polled > 0) {
            char byte;
            if (read(barrier->ready[0], &byte, 1) != 1)
                return 0;
            count--;
            continue;
        }
        for (const pid_t *child = children; *child > 0; child++) {
            siginfo_t info = {0};
            if (waitid(P_PID, (id_t)*child, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == *child)
                return 0;
        }
    }
    return 1;
}

static inline void barrier_release(struct barrier *barrier)
{
    if (write(barrier->go[1], "gg", 2) != 2)
        fail("write(barrier)");
}

/* Forks a child that runs `body(argument)` and exits with its return value. */
static inline pid_t spawn(int (*body)(void *), void *argument)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0)
        _exit(body(argument));
    return pid;
}

/* Reaps a child; returns 0 if it exited with status 0. */
static inline int reap(pid_t pid, const char *role)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail("waitpid");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "%s: the %s was killed by signal %d\n", program_invocation_short_name, role, WTERMSIG(status));
    else
        fprintf(stderr, "%s: the %s exited with status %d\n", program_invocation_short_name, role, WEXITSTATUS(status));
    return 1;
}

/* Round trips (or one-way delays) under 2048 clock ticks counted tick by tick, longer ones by power
 * of two: as cheap per message as ipcbench's IntervalRecorder, and read at the end so the compiler
 * keeps the work. */
enum { EXACT_TICKS = 2048 };
struct tally {
    uint64_t exact[EXACT_TICKS];
    uint64_t coarse[64];
};

static inline void tally_count(struct tally *tally, uint64_t from, uint64_t to)
{
    uint64_t ticks = to > from ? to - from : 0;
    if (ticks < EXACT_TICKS)
        tally->exact[ticks]++;
    else
        tally->coarse[63 - __builtin_clzll(ticks)]++;
}

static inline uint64_t tally_total(const struct tally *tally)
{
    uint64_t total = 0;
    for (int i = 0; i < EXACT_TICKS; i++)
        total += tally->exact[i];
    for (int i = 0; i < 64; i++)
        total += tally->coarse[i];
    return total;
}

/* The receive side's sequence check (ipcbench's SequenceCheck, lost and reordered counts). */
struct sequence_check {
    uint64_t expected, lost, reordered;
};

static inline void sequence_observe(struct sequence_check *check, uint64_t sequence)
{
    if (sequence == check->expected) {
        check->expected++;
    } else if (sequence > check->expected) {
        check->lost += sequence - check->expected;
        check->expected = sequence + 1;
    } else {
        check->reordered++;
        if (check->lost)
            check->lost--;
    }
}

/* How many messages a streaming producer sends between two reads of the clock for its deadline
 * (ipcbench's Loops.deadlineCheckInterval): up to 64, at most 256 KiB, a power of two. */
static inline uint64_t deadline_check_interval(size_t size)
{
    size_t fitting = (256u << 10) / (size ? size : 1);
    if (fitting < 1)
        fitting = 1;
    if (fitting > 64)
        fitting = 64;
    uint64_t interval = 1;
    while (interval * 2 <= fitting)
        interval *= 2;
    return interval;
}

/* Runs one pair: the consumer first, the producer once the consumer is ready, then `after_start`
 * (may be NULL: the parent's cleanup of what only the children need), both let go at once, both
 * reaped. Returns 0 when both ran and exited 0; on a failed start the other child is killed. */
static inline int run_pair(struct barrier *barrier, int (*consumer)(void *), int (*producer)(void *), void (*after_start)(void))
{
    pid_t children[3] = {spawn(consumer, NULL), 0, 0};
    pid_t consumer_pid = children[0];
    int ok = barrier_collect(barrier, 1, children);
    pid_t producer_pid = children[1] = ok ? spawn(producer, NULL) : -1;
    if (after_start)
        after_start();
    ok = ok && barrier_collect(barrier, 2, children);
    if (ok)
        barrier_release(barrier);
    else {
        if (producer_pid > 0)
            kill(producer_pid, SIGKILL);
        kill(consumer_pid, SIGKILL);
    }
    int failed = (producer_pid > 0 ? reap(producer_pid, "producer") : 1) | reap(consumer_pid, "consumer");
    return failed || !ok;
}

/* What a streaming consumer reports to the parent (in shared memory), and how it ends: messages the
 * producer announced in its end marker but never sent count as lost, as in ipcbench. */
struct stream_results {
    uint64_t loop_start_ns, last_receive_ns, sent_by_producer, timed, lost, reordered, checksum;
};

static inline void stream_finish(struct stream_results *results, struct sequence_check *check, uint64_t warmup,
                                 uint64_t sent_by_producer, uint64_t timed, uint64_t checksum)
{
    results->last_receive_ns = now_ns();
    if (warmup + sent_by_producer > check->expected)
        check->lost += warmup + sent_by_producer - check->expected;
    results->sent_by_producer = sent_by_producer;
    results->timed = timed;
    results->lost = check->lost;
    results->reordered = check->reordered;
    results->checksum = checksum;
}

/* Parent: 0 when every one of the `messages` timed messages arrived, in order; else says why, 1. */
static inline int stream_verify(const char *program, const struct stream_results *results, uint64_t messages)
{
    if (results->timed == messages && results->sent_by_producer == messages && !results->lost && !results->reordered)
        return 0;
    fprintf(stderr, "%s: received %llu of %llu timed messages, %llu lost, %llu reordered\n", program,
            (unsigned long long)results->timed, (unsigned long long)messages, (unsigned long long)results->lost,
            (unsigned long long)results->reordered);
    return 1;
}

#endif
