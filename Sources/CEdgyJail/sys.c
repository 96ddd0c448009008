// Runs in the PARENT only. Small wrappers for calls that Swift's Glibc module does not expose
// (they need _GNU_SOURCE or kernel headers).
#include "include/edgy_jail.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/eventfd.h>
#include <unistd.h>

int edgy_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

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
