/* fd_stream.c - streaming fixed-size messages through a pipe (or a UNIX stream socket) as fast as it
 * takes them, doing per message what ipcbench's throughput loops do (Sources/IPCBench/Harness/Loops.swift,
 * throughputProducer/throughputConsumer) with --produce write --touch read, so scripts/compare-with-c
 * can hold `ipcbench run --mechanisms pipe --mode throughput` against plain C.
 *
 * usage: fd_stream pipe|unix CPU_PRODUCER CPU_CONSUMER SIZE MESSAGES WARMUP
 * Prints one line: GBps=<payload bytes of the MESSAGES timed messages / elapsed / 1e9> (ipcbench's
 * bytes_per_s / 1e9) and the channel's pipe size.
 *
 * As ipcbench:
 *   producer  per message: writes the header (sequence, the loop's start time) and every payload byte
 *             into its private buffer, write()s the whole message; reads CLOCK_MONOTONIC every
 *             min(64, 256 KiB / SIZE) messages (ipcbench's --duration check); after WARMUP + MESSAGES, a full-size end marker;
 *   consumer  per message: read()s it whole into its private buffer, reads every byte (sum of 8-byte
 *             words), checks the sequence number; stops its clock when the end marker has arrived.
 *   elapsed   = consumer's clock after the end marker - producer's clock before the first timed message
 *             (CLOCK_MONOTONIC, shared by both processes), over MESSAGES * SIZE bytes.
 * The pipe keeps its default size, as ipcbench's pipe mechanism does (no F_SETPIPE_SZ).
 * Build: clang -O3 -o fd_stream fd_stream.c (compare-with-c uses the Swift toolchain's clang).
 */
#include "stream_channel.h"

static struct stream_channel channel;
static struct barrier barrier;
static struct stream_results *results;
static int producer_cpu, consumer_cpu;
static size_t size;
static uint64_t messages, warmup;

static int consumer(void *unused)
{
    (void)unused;
    pin(consumer_cpu);
    int read_fd, write_fd;
    channel_open_consumer(&channel, &barrier, &read_fd, &write_fd);
    unsigned char *incoming = private_buffer(size);
    struct sequence_check check = {0};
    uint64_t checksum = 0, timed = 0, sent_by_producer = 0;
    barrier_signal(&barrier);
    barrier_wait_go(&barrier);
    for (;;) {
        if (!read_exactly(read_fd, incoming, size)) {
            errno = 0;
            fail("producer closed the channel before its end marker");
        }
        uint64_t sequence = sequence_of(incoming);
        if (sequence & END_MARKER) {
            sent_by_producer = sequence & ~END_MARKER;
            break;
        }
        checksum += read_all(incoming, size);
        sequence_observe(&check, sequence);
        if (sequence >= warmup)
            timed++;
    }
    stream_finish(results, &check, warmup, sent_by_producer, timed, checksum);
    check_still_on(consumer_cpu);
    return 0;
}

static int producer(void *unused)
{
    (void)unused;
    pin(producer_cpu);
    int read_fd, write_fd;
    channel_open_producer(&channel, &read_fd, &write_fd);
    unsigned char *outgoing = private_buffer(size);
    uint64_t total = warmup + messages, loop_start = 0, deadline = UINT64_MAX, sequence = 0;
    uint64_t check_mask = deadline_check_interval(size) - 1;
    barrier_signal(&barrier);
    barrier_wait_go(&barrier);
    while (sequence < total) {
        if (sequence == warmup)
            loop_start = now_ns();
        put_header(outgoing, sequence, loop_start);
        write_payload(outgoing, size, sequence);
        write_all(write_fd, outgoing, size);
        sequence++;
        if ((sequence & check_mask) == 0 && sequence > warmup && now_ns() >= deadline)
            break;
    }
    check_still_on(producer_cpu);
    put_header(outgoing, END_MARKER | (sequence - warmup), now_ns());
    write_all(write_fd, outgoing, size);
    results->loop_start_ns = loop_start;
    return 0;
}

/* The parent closes its copies of the channel once both children have theirs. */
static void parent_done(void)
{
    channel_parent_done(&channel);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s pipe|unix CPU_PRODUCER CPU_CONSUMER SIZE MESSAGES WARMUP\n", argv[0]);
        return 2;
    }
    channel_prepare(&channel, argv[1]);
    producer_cpu = (int)parse_count(argv[2], "CPU_PRODUCER");
    consumer_cpu = (int)parse_count(argv[3], "CPU_CONSUMER");
    size = parse_count(argv[4], "SIZE");
    messages = parse_count(argv[5], "MESSAGES");
    warmup = parse_count(argv[6], "WARMUP");
    if (size < HEADER_BYTES || messages < 1) {
        errno = 0;
        fail("SIZE must be at least %d bytes and MESSAGES at least 1", HEADER_BYTES);
    }
    results = shared_region(sizeof *results);
    barrier_init(&barrier);

    int failed = run_pair(&barrier, consumer, producer, parent_done);
    channel_remove(&channel);
    if (failed)
        return 1;
    if (stream_verify(argv[0], results, messages))
        return 1;
    double seconds = (double)(results->last_receive_ns - results->loop_start_ns) / 1e9;
    printf("fd_stream %s producer=%d consumer=%d size=%zu messages=%llu warmup=%llu pipe_bytes=%d GBps=%.4f checksum=%llx\n",
           argv[1], producer_cpu, consumer_cpu, size, (unsigned long long)messages, (unsigned long long)warmup,
           channel.pipe_bytes, (double)(messages * size) / seconds / 1e9, (unsigned long long)results->checksum);
    return 0;
}
