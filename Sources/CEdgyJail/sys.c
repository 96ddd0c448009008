// Runs in the PARENT only. Small wrappers for calls that Swift's Glibc module does not expose
// (they need _GNU_SOURCE or kernel headers).
#include "include/edgy_jail.h"
#include "socket_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int edgy_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int edgy_enter_background(void) {
    // `0` names the calling thread for both calls, not the process.
    if (setpriority(PRIO_PROCESS, 0, EDGY_BACKGROUND_NICE) != 0) return -1;
    struct sched_param no_priority = {0};
    return sched_setscheduler(0, SCHED_IDLE, &no_priority);
}

int edgy_is_background(int policy, int nice) { return policy == SCHED_IDLE || nice > 0; }

int edgy_thread_in_background(void) {
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    return edgy_is_background(sched_getscheduler(0), errno == 0 ? nice : 0);
}

int edgy_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int edgy_malloc_keep(int mmap_threshold, int trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) && mallopt(M_TRIM_THRESHOLD, trim_threshold);
}

int edgy_seccomp_receive(int listener, struct edgy_seccomp_violation *violation) {
    // The kernel refuses a notification buffer that is not zeroed.
    struct seccomp_notif notif;
    memset(&notif, 0, sizeof notif);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &notif) != 0) return -errno;
    violation->id = notif.id;
    violation->pid = (pid_t)notif.pid;
    violation->nr = notif.data.nr;
    violation->arch = notif.data.arch;
    for (int i = 0; i < 6; i++) violation->args[i] = notif.data.args[i];
    return 0;
}

int edgy_seccomp_respond(int listener, uint64_t id, int error) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    if (error == 0) {
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else {
        resp.error = -error;
    }
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) return -errno;
    return 0;
}

long edgy_read_remote(pid_t pid, uint64_t address, void *buffer, size_t size) {
    struct iovec local = {.iov_base = buffer, .iov_len = size};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)address, .iov_len = size};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0) return -errno;
    return n == (ssize_t)size ? n : -EFAULT;
}

long edgy_read_remote_string(pid_t pid, uint64_t address, char *buffer, size_t size) {
    if (size == 0) return -EINVAL;
    const uint64_t page = 4096;
    size_t done = 0;
    while (done < size - 1) {
        uint64_t at = address + done;
        size_t chunk = (size_t)(page - at % page);
        if (chunk > size - 1 - done) chunk = size - 1 - done;
        struct iovec local = {.iov_base = buffer + done, .iov_len = chunk};
        struct iovec remote = {.iov_base = (void *)(uintptr_t)at, .iov_len = chunk};
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n <= 0) return n < 0 ? -errno : -EFAULT;
        void *nul = memchr(buffer + done, 0, (size_t)n);
        if (nul) return (long)((char *)nul - buffer);
        done += (size_t)n;
    }
    buffer[size - 1] = 0;
    return -ENAMETOOLONG;
}

int edgy_seccomp_waiting(int listener, uint64_t id) {
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

pid_t edgy_thread_group(pid_t tid) {
    char path[48], buf[512];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tid;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return tid;
    buf[n] = 0;
    const char *line = strstr(buf, "\nTgid:");
    if (!line) return tid;
    long tgid = 0;
    for (line += 6; *line == ' ' || *line == '\t'; line++) {}
    for (; *line >= '0' && *line <= '9'; line++) tgid = tgid * 10 + (*line - '0');
    return tgid > 0 ? (pid_t)tgid : tid;
}

int edgy_take_fds(struct msghdr *msg, int *fds, int max) {
    int count = 0, overflow = (msg->msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof fd, sizeof fd);
            if (count < max) fds[count++] = fd;
            else {
                close(fd);
                overflow = 1;
            }
        }
    }
    if (overflow) {
        for (int i = 0; i < count; i++) close(fds[i]);
        return -1;
    }
    return count;
}

// ---- `edgy helper`'s socket (Sources/EdgyCLI/RunHelper.swift) ----------------------------------

int edgy_seqpacket_listen(const char *path, int backlog) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        errno = ENAMETOOLONG;
        return -ENAMETOOLONG;
    }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    // Only this user may connect: the socket is created 0600 (the umask applies at bind).
    mode_t old = umask(0177);
    int bound = bind(fd, (struct sockaddr *)&address, sizeof address);
    umask(old);
    if (bound != 0 || listen(fd, backlog) != 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

int edgy_seqpacket_connect(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) return -ENAMETOOLONG;
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

int edgy_accept_cloexec(int listener) {
    int fd;
    do {
        fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int edgy_peer_credentials(int socket_fd, uint32_t *uid, int32_t *pid) {
    struct ucred peer;
    socklen_t size = sizeof peer;
    if (getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0) return -errno;
    *uid = peer.uid;
    *pid = peer.pid;
    return 0;
}

long edgy_recv_with_fds(int socket_fd, void *buffer, size_t size, int *fds, int max_fds, int *fd_count) {
    union {
        char buf[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } control;
    if (max_fds > 8) max_fds = 8;
    struct iovec iov = {.iov_base = buffer, .iov_len = size};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    ssize_t n;
    do {
        n = recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    // Every fd that arrived is either handed back or closed here, whatever else is wrong.
    int count = edgy_take_fds(&msg, fds, max_fds);
    if (count < 0) return -EMSGSIZE;
    if (msg.msg_flags & MSG_TRUNC) {
        for (int i = 0; i < count; i++) close(fds[i]);
        return -EMSGSIZE;
    }
    *fd_count = count;
    return n;
}
