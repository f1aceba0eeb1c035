/* stream_channel.h - the byte-stream channels of fd_pingpong.c and fd_stream.c, set up as ipcbench's
 * pipe and unix-stream mechanisms set them up (Sources/IPCBench/Mechanisms/Pipe.swift, UnixStream.swift,
 * StreamEndpoint.swift):
 *   pipe   two anonymous pipe(2)s, one per direction, made by the parent and inherited; default pipe
 *          size (ipcbench's pipe mechanism does not call F_SETPIPE_SZ);
 *   unix   one AF_UNIX SOCK_STREAM socket bound to a path in a private 0700 directory; the consumer
 *          listens and accepts, the producer connects by the path; default buffer sizes.
 * Messages are framed by their fixed size: write() until every byte is out, read() until the whole
 * message is in (retrying short transfers and EINTR). Descriptors block, unless channel_poll is set
 * (ipcbench --wait poll): then they are O_NONBLOCK and a call that returns EAGAIN is retried at once.
 */
#ifndef IPCBENCH_C_STREAM_CHANNEL_H
#define IPCBENCH_C_STREAM_CHANNEL_H

#include "common.h"
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

struct stream_channel {
    int unix_socket;         /* 0: pipes, 1: UNIX stream socket */
    int to_consumer[2];      /* pipes: [read end, write end] */
    int to_producer[2];
    char directory[64];      /* socket: the private directory and the path bound in it */
    struct sockaddr_un address;
    int pipe_bytes;          /* pipes: F_GETPIPE_SZ, for the record */
};

/* Set before the channel is opened: busy-poll O_NONBLOCK descriptors instead of blocking. */
static int channel_poll;

static inline void channel_set_wait(int read_fd, int write_fd)
{
    if (!channel_poll)
        return;
    int fds[2] = {read_fd, write_fd};
    for (int i = 0; i < 2; i++) {
        int flags = fcntl(fds[i], F_GETFL);
        if (flags < 0 || fcntl(fds[i], F_SETFL, flags | O_NONBLOCK) != 0)
            fail("fcntl(O_NONBLOCK)");
    }
}

static inline void channel_prepare(struct stream_channel *channel, const char *kind)
{
    memset(channel, 0, sizeof *channel);
    if (strcmp(kind, "pipe") == 0) {
        if (pipe(channel->to_consumer) != 0 || pipe(channel->to_producer) != 0)
            fail("pipe");
        channel->pipe_bytes = fcntl(channel->to_consumer[1], F_GETPIPE_SZ);
    } else if (strcmp(kind, "unix") == 0) {
        channel->unix_socket = 1;
        strcpy(channel->directory, "/tmp/ipcbench-c-XXXXXX");
        if (!mkdtemp(channel->directory))
            fail("mkdtemp");
        channel->address.sun_family = AF_UNIX;
        snprintf(channel->address.sun_path, sizeof channel->address.sun_path, "%s/consumer.sock", channel->directory);
    } else {
        errno = 0;
        fail("channel must be pipe or unix, not '%s'", kind);
    }
}

/* Parent, once both children are started: it keeps no end of the pipes, so a child that dies shows
 * as end-of-file to the other instead of leaving it blocked. */
static inline void channel_parent_done(struct stream_channel *channel)
{
    if (!channel->unix_socket) {
        close(channel->to_consumer[0]);
        close(channel->to_consumer[1]);
        close(channel->to_producer[0]);
        close(channel->to_producer[1]);
    }
}

/* Parent, after both children are gone. */
static inline void channel_remove(struct stream_channel *channel)
{
    if (channel->unix_socket) {
        unlink(channel->address.sun_path);
        rmdir(channel->directory);
    }
}

/* Consumer: its read and write descriptors. For a socket, binds and listens, tells the parent it is
 * listening (so the producer may be started), then accepts. */
static inline void channel_open_consumer(struct stream_channel *channel, struct barrier *barrier, int *read_fd, int *write_fd)
{
    if (!channel->unix_socket) {
        close(channel->to_consumer[1]);
        close(channel->to_producer[0]);
        *read_fd = channel->to_consumer[0];
        *write_fd = channel->to_producer[1];
        channel_set_wait(*read_fd, *write_fd);
        barrier_signal(barrier);
        return;
    }
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0)
        fail("socket");
    if (bind(listener, (struct sockaddr *)&channel->address, sizeof channel->address) != 0)
        fail("bind(%s)", channel->address.sun_path);
    if (listen(listener, 1) != 0)
        fail("listen");
    barrier_signal(barrier);
    int fd;
    while ((fd = accept(listener, NULL, NULL)) < 0)
        if (errno != EINTR)
            fail("accept");
    close(listener);
    *read_fd = *write_fd = fd;
    channel_set_wait(fd, fd);
}

static inline void channel_open_producer(struct stream_channel *channel, int *read_fd, int *write_fd)
{
    if (!channel->unix_socket) {
        close(channel->to_consumer[0]);
        close(channel->to_producer[1]);
        *read_fd = channel->to_producer[0];
        *write_fd = channel->to_consumer[1];
        channel_set_wait(*read_fd, *write_fd);
        return;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        fail("socket");
    if (connect(fd, (struct sockaddr *)&channel->address, sizeof channel->address) != 0)
        fail("connect(%s)", channel->address.sun_path);
    *read_fd = *write_fd = fd;
    channel_set_wait(fd, fd);
}

static inline void write_all(int fd, const unsigned char *bytes, size_t size)
{
    size_t offset = 0;
    while (offset < size) {
        ssize_t written = write(fd, bytes + offset, size - offset);
        if (written < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fail("write");
        }
        offset += (size_t)written;
    }
}

/* Returns 0 at end-of-file before the first byte; end-of-file mid-message is an error. */
static inline int read_exactly(int fd, unsigned char *buffer, size_t size)
{
    size_t offset = 0;
    while (offset < size) {
        ssize_t count = read(fd, buffer + offset, size - offset);
        if (count > 0) {
            offset += (size_t)count;
        } else if (count == 0) {
            if (offset == 0)
                return 0;
            errno = 0;
            fail("peer closed mid-message after %zu of %zu bytes", offset, size);
        } else if (errno != EINTR && errno != EAGAIN) {
            fail("read");
        }
    }
    return 1;
}

#endif
