/* ring_stream.c - streaming through a spinning single-producer/single-consumer ring in shared memory,
 * laid out and driven as ipcbench's shm-posix throughput ring with the spin notifier
 * (Sources/IPCBench/Ring/: RingLayout.swift, RingChannel.swift, SpinNotifier.swift), doing per message what ipcbench does with --produce write --touch read, so
 * scripts/compare-with-c can hold `ipcbench run --mechanisms shm-posix --variants in-place/spin|copy/spin
 * --mode throughput` against plain C.
 *
 * usage: ring_stream in-place|copy CPU_PRODUCER CPU_CONSUMER SIZE MESSAGES WARMUP [PAUSES=1]
 *   in-place  the producer writes each message (header and every payload byte) straight into its slot;
 *             the consumer reads every byte where it lies, then releases the slot (0 copies);
 *   copy      the producer writes the message into a private buffer, waits for a free slot and
 *             memcpy's it in; the consumer memcpy's the slot out into a private buffer, releases the
 *             slot, then reads every byte of its copy (2 copies);
 *   PAUSES    PAUSE instructions between two polls (ipcbench: --spin-pauses, else 1 when the cache-line
 *             floor it probed before the cell is under 150 ns round trip, else 3); a waiter yields the
 *             CPU after 256 of them, as ipcbench's does.
 * As in ipcbench, the producer stamps each message with the loop's start time and reads CLOCK_MONOTONIC
 * every min(64, 256 KiB / SIZE) messages (its --duration check); the consumer checks every sequence
 * number; after WARMUP + MESSAGES the producer sends a full-size end marker.
 * Prints one line: GBps=<payload bytes of the MESSAGES timed messages / elapsed / 1e9> (ipcbench's
 * bytes_per_s / 1e9), elapsed = consumer's CLOCK_MONOTONIC after the end marker - producer's before the
 * first timed message.
 *
 * The ring (RingLayout for throughput): slots of slot_bytes = 16-byte slot header + SIZE rounded up to
 * 64; slot count = max(8, 2 MiB / slot_bytes) rounded down to a power of two (at most 4096); the slots
 * start 4096 bytes into the segment; ring control at offset 64: head (producer-written) at +0, tail
 * (consumer-written) at +64, each on its own cache line. A message is published by storing (release)
 * the slot's stamp, (index + 1) << 1, in the slot header's first word, then the head; the consumer polls
 * that stamp (acquire) and releases the slot by storing (release) the tail. The producer reads the tail
 * only when its last-seen copy says the ring is full. The segment is MAP_SHARED shmem, faulted in
 * (MADV_POPULATE_WRITE) by each side before the barrier, like ipcbench's POSIX shared memory.
 * Build: clang -O3 -o ring_stream ring_stream.c (compare-with-c uses the Swift toolchain's clang).
 */
#include "common.h"
#include <stdatomic.h>

enum { SLOT_HEADER = 16, LINE = 64, SLOTS_OFFSET = 4096, CONTROL_OFFSET = 64, TARGET_RING_BYTES = 2 << 20, MAXIMUM_SLOTS = 4096 };

static struct barrier barrier;
static struct stream_results *results;
static int producer_cpu, consumer_cpu, copying;
static size_t size, slot_bytes, segment_bytes;
static uint32_t slot_count, mask;
static uint64_t messages, warmup;
static unsigned char *segment;
static _Atomic uint32_t *head_word, *tail_word;

static inline unsigned char *slot_message(uint32_t index)
{
    return segment + SLOTS_OFFSET + (size_t)(index & mask) * slot_bytes + SLOT_HEADER;
}

static inline _Atomic uint32_t *stamp_word(uint32_t index)
{
    return (_Atomic uint32_t *)(segment + SLOTS_OFFSET + (size_t)(index & mask) * slot_bytes);
}

static inline uint32_t stamp(uint32_t index) { return (index + 1) << 1; }

static int consumer(void *unused)
{
    (void)unused;
    pin(consumer_cpu);
    prefault(segment, segment_bytes);
    unsigned char *copy = copying ? private_buffer(size) : NULL;
    struct sequence_check check = {0};
    uint64_t checksum = 0, timed = 0, sent_by_producer = 0;
    uint32_t tail = 0;
    barrier_signal(&barrier); /* "listening": nothing to accept */
    barrier_signal(&barrier);
    barrier_wait_go(&barrier);
    for (;; tail++) {
        _Atomic uint32_t *word = stamp_word(tail);
        uint32_t published = stamp(tail);
        int spins = 0;
        while (atomic_load_explicit(word, memory_order_acquire) != published)
            spin_pause(&spins);
        const unsigned char *message = slot_message(tail);
        if (copying) {
            memcpy(copy, message, size);
            atomic_store_explicit(tail_word, tail + 1, memory_order_release);
            message = copy;
        }
        uint64_t sequence = sequence_of(message);
        if (!(sequence & END_MARKER))
            checksum += read_all(message, size);
        if (!copying)
            atomic_store_explicit(tail_word, tail + 1, memory_order_release);
        if (sequence & END_MARKER) {
            sent_by_producer = sequence & ~END_MARKER;
            break;
        }
        sequence_observe(&check, sequence);
        if (sequence >= warmup)
            timed++;
    }
    stream_finish(results, &check, warmup, sent_by_producer, timed, checksum);
    check_still_on(consumer_cpu);
    return 0;
}

static uint32_t head, seen_tail;
static unsigned char *outgoing;

static inline void send_message(uint64_t sequence, uint64_t sent_at, int payload)
{
    if (copying) {
        put_header(outgoing, sequence, sent_at);
        if (payload)
            write_payload(outgoing, size, sequence);
    }
    if (head - seen_tail >= slot_count) {
        int spins = 0;
        for (;;) {
            uint32_t tail = atomic_load_explicit(tail_word, memory_order_acquire);
            seen_tail = tail;
            if (head - tail < slot_count)
                break;
            spin_pause(&spins);
        }
    }
    unsigned char *slot = slot_message(head);
    if (copying) {
        memcpy(slot, outgoing, size);
    } else {
        put_header(slot, sequence, sent_at);
        if (payload)
            write_payload(slot, size, sequence);
    }
    atomic_store_explicit(stamp_word(head), stamp(head), memory_order_release);
    head++;
    atomic_store_explicit(head_word, head, memory_order_relaxed);
}

static int producer(void *unused)
{
    (void)unused;
    pin(producer_cpu);
    prefault(segment, segment_bytes);
    outgoing = copying ? private_buffer(size) : NULL;
    uint64_t total = warmup + messages, loop_start = 0, deadline = UINT64_MAX, sequence = 0;
    uint64_t check_mask = deadline_check_interval(size) - 1;
    barrier_signal(&barrier);
    barrier_wait_go(&barrier);
    while (sequence < total) {
        if (sequence == warmup)
            loop_start = now_ns();
        send_message(sequence, loop_start, 1);
        sequence++;
        if ((sequence & check_mask) == 0 && sequence > warmup && now_ns() >= deadline)
            break;
    }
    check_still_on(producer_cpu);
    send_message(END_MARKER | (sequence - warmup), now_ns(), 0);
    results->loop_start_ns = loop_start;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: %s in-place|copy CPU_PRODUCER CPU_CONSUMER SIZE MESSAGES WARMUP [PAUSES=1]\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "in-place") != 0 && strcmp(argv[1], "copy") != 0) {
        fprintf(stderr, "%s: the path must be in-place or copy, not '%s'\n", argv[0], argv[1]);
        return 2;
    }
    copying = strcmp(argv[1], "copy") == 0;
    producer_cpu = (int)parse_count(argv[2], "CPU_PRODUCER");
    consumer_cpu = (int)parse_count(argv[3], "CPU_CONSUMER");
    size = parse_count(argv[4], "SIZE");
    messages = parse_count(argv[5], "MESSAGES");
    warmup = parse_count(argv[6], "WARMUP");
    pauses_per_poll = argc > 7 ? (int)parse_count(argv[7], "PAUSES") : 1;
    if (size < HEADER_BYTES || messages < 1) {
        errno = 0;
        fail("SIZE must be at least %d bytes and MESSAGES at least 1", HEADER_BYTES);
    }
    slot_bytes = (SLOT_HEADER + size + LINE - 1) / LINE * LINE;
    size_t wanted = TARGET_RING_BYTES / slot_bytes;
    if (wanted < 8)
        wanted = 8;
    if (wanted > MAXIMUM_SLOTS)
        wanted = MAXIMUM_SLOTS;
    slot_count = 1;
    while (slot_count * 2 <= wanted)
        slot_count *= 2;
    mask = slot_count - 1;
    long page = sysconf(_SC_PAGESIZE);
    segment_bytes = (SLOTS_OFFSET + slot_count * slot_bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
    segment = shared_region(segment_bytes);
    head_word = (_Atomic uint32_t *)(segment + CONTROL_OFFSET);
    tail_word = (_Atomic uint32_t *)(segment + CONTROL_OFFSET + LINE);
    results = shared_region(sizeof *results);
    barrier_init(&barrier);

    if (run_pair(&barrier, consumer, producer, NULL))
        return 1;
    if (stream_verify(argv[0], results, messages))
        return 1;
    double seconds = (double)(results->last_receive_ns - results->loop_start_ns) / 1e9;
    printf("ring_stream %s producer=%d consumer=%d size=%zu slots=%u slot_bytes=%zu pauses=%d messages=%llu warmup=%llu "
           "GBps=%.4f checksum=%llx\n",
           argv[1], producer_cpu, consumer_cpu, size, slot_count, slot_bytes, pauses_per_poll, (unsigned long long)messages,
           (unsigned long long)warmup, (double)(messages * size) / seconds / 1e9, (unsigned long long)results->checksum);
    return 0;
}
