// Shim declarations for the Queues mechanisms (implemented in ../queues.c).
//
// POSIX message queues: mq_open is variadic and <mqueue.h> is not part of Swift's Glibc module, so
// the calls are wrapped here with plain types (on Linux an mqd_t is a file descriptor, an int).
#pragma once

#include <stddef.h>
#include <sys/types.h>

/// mq_open(name, oflag | O_CREAT, mode, &{mq_maxmsg, mq_msgsize}). Returns the descriptor or -1 with errno.
int ipcb_mq_create(const char *name, int oflag, unsigned int mode, long max_messages, long message_bytes);
/// mq_open(name, oflag) of an existing queue. Returns the descriptor or -1 with errno.
int ipcb_mq_open(const char *name, int oflag);
/// mq_send with priority 0. Returns 0 or -1 with errno.
int ipcb_mq_send(int mqd, const void *message, size_t length);
/// mq_receive; `capacity` must be at least the queue's mq_msgsize. Returns the message length or -1 with errno.
ssize_t ipcb_mq_receive(int mqd, void *buffer, size_t capacity);
/// mq_notify(mqd, SIGEV_SIGNAL with `sig`): one signal when a message next arrives in the empty
/// queue, then the registration is gone. Returns 0 or -1 with errno (EBUSY: already registered).
int ipcb_mq_notify_signal(int mqd, int sig);
/// mq_getattr: the queue's depth and message size. Returns 0 or -1 with errno.
int ipcb_mq_attributes(int mqd, long *max_messages, long *message_bytes, long *current_messages);
int ipcb_mq_close(int mqd);
int ipcb_mq_unlink(const char *name);
/// The soft RLIMIT_MSGQUEUE (bytes of queue space per user; a macro Swift does not import), or -1 when unlimited.
long long ipcb_mq_byte_limit(void);
