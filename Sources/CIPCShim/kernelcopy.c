#define _GNU_SOURCE
#include "CIPCShimKernelCopy.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

ssize_t ipcb_vmsplice_gift(int fd, const void *base, size_t length) {
    struct iovec iov = {(void *)base, length};
    return vmsplice(fd, &iov, 1, SPLICE_F_GIFT);
}

ssize_t ipcb_process_vm_read(pid_t pid, void *local, const void *remote, size_t length) {
    struct iovec local_iov = {local, length};
    struct iovec remote_iov = {(void *)remote, length};
    return process_vm_readv(pid, &local_iov, 1, &remote_iov, 1, 0);
}

int ipcb_allow_ptracer(pid_t pid) { return prctl(PR_SET_PTRACER, (unsigned long)pid, 0, 0, 0); }

int ipcb_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); }

int ipcb_memfd_seal_size(int fd) { return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL); }

int ipcb_memfd_size_sealed(int fd) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) return -1;
    return (seals & F_SEAL_SHRINK) != 0;
}

ssize_t ipcb_send_descriptor(int socket, int descriptor, const void *data, size_t length) {
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {(void *)data, length};
    struct msghdr message = {0};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &descriptor, sizeof(int));
    return sendmsg(socket, &message, MSG_NOSIGNAL);
}

ssize_t ipcb_receive_descriptor(int socket, void *data, size_t capacity, int *descriptor) {
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {data, capacity};
    struct msghdr message = {0};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    *descriptor = -1;
    ssize_t received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (received < 0) return -1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS &&
            header->cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(descriptor, CMSG_DATA(header), sizeof(int));
        }
    }
    return received;
}
