#define _GNU_SOURCE
#include "CIPCShimQueues.h"

#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>

int ipcb_mq_create(const char *name, int oflag, unsigned int mode, long max_messages, long message_bytes) {
    struct mq_attr attributes = {0};
    attributes.mq_maxmsg = max_messages;
    attributes.mq_msgsize = message_bytes;
    return mq_open(name, oflag | O_CREAT, (mode_t)mode, &attributes);
}

int ipcb_mq_open(const char *name, int oflag) { return mq_open(name, oflag); }

int ipcb_mq_send(int mqd, const void *message, size_t length) { return mq_send(mqd, message, length, 0); }

ssize_t ipcb_mq_receive(int mqd, void *buffer, size_t capacity) { return mq_receive(mqd, buffer, capacity, NULL); }

int ipcb_mq_notify_signal(int mqd, int sig) {
    struct sigevent event = {0};
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = sig;
    return mq_notify(mqd, &event);
}

int ipcb_mq_attributes(int mqd, long *max_messages, long *message_bytes, long *current_messages) {
    struct mq_attr attributes;
    if (mq_getattr(mqd, &attributes) != 0) return -1;
    *max_messages = attributes.mq_maxmsg;
    *message_bytes = attributes.mq_msgsize;
    *current_messages = attributes.mq_curmsgs;
    return 0;
}

int ipcb_mq_close(int mqd) { return mq_close(mqd); }

int ipcb_mq_unlink(const char *name) { return mq_unlink(name); }

long long ipcb_mq_byte_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_MSGQUEUE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return -1;
    return limit.rlim_cur > (rlim_t)INT64_MAX ? -1 : (long long)limit.rlim_cur;
}
