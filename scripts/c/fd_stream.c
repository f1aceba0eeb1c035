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
 * Build: cc -O3 -o fd_stream fd_stream.c (what compare-with-c does).
 */
#include "stream_channel.h"

struct results {
    uint64_t loop_start_ns, last_receive_ns, sent_by_producer, timed, lost, reordered, checksum;
};

static struct stream_channel channel;
static struct barrier barrier;
static struct results *results;
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
    results->last_receive_ns = now_ns();
    check_still_on(consumer_cpu);
    if (warmup + sent_by_producer > check.expected)
        check.lost += warmup + sent_by_producer - check.expected;
    results->sent_by_producer = sent_by_producer;
    results->timed = timed;
    results->lost = check.lost;
    results->reordered = check.reordered;
    results->checksum = checksum;
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

    pid_t children[3] = {spawn(consumer, NULL), 0, 0};
    pid_t consumer_pid = children[0];
    int ok = barrier_collect(&barrier, 1, children);
    pid_t producer_pid = children[1] = ok ? spawn(producer, NULL) : -1;
    channel_parent_done(&channel);
    ok = ok && barrier_collect(&barrier, 2, children);
    if (ok)
        barrier_release(&barrier);
    else {
        if (producer_pid > 0)
            kill(producer_pid, SIGKILL);
        kill(consumer_pid, SIGKILL);
    }
    int failed = (producer_pid > 0 ? reap(producer_pid, "producer") : 1) | reap(consumer_pid, "consumer");
    channel_remove(&channel);
    if (failed || !ok)
        return 1;
    if (results->timed != messages || results->sent_by_producer != messages || results->lost || results->reordered) {
        fprintf(stderr, "%s: received %llu of %llu timed messages, %llu lost, %llu reordered\n", argv[0],
                (unsigned long long)results->timed, (unsigned long long)messages, (unsigned long long)results->lost,
                (unsigned long long)results->reordered);
        return 1;
    }
    double seconds = (double)(results->last_receive_ns - results->loop_start_ns) / 1e9;
    printf("fd_stream %s producer=%d consumer=%d size=%zu messages=%llu warmup=%llu pipe_bytes=%d GBps=%.4f checksum=%llx\n",
           argv[1], producer_cpu, consumer_cpu, size, (unsigned long long)messages, (unsigned long long)warmup,
           channel.pipe_bytes, (double)(messages * size) / seconds / 1e9, (unsigned long long)results->checksum);
    return 0;
}
