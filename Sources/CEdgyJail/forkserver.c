// The fork server's protocol, both ends: `edgy_forkserver_serve` runs in the `edgy-forkserver`
// process (single-threaded, so the clone and the child's glibc calls are safe), and
// `edgy_forkserver_spawn` in the daemon. The wire format is in edgy_jail.h.
#include "include/edgy_jail.h"
#include "socket_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define REQUEST_FDS_MAX 4  // stdin, stdout, stderr, cgroup
#define REPLY_FDS 4        // pidfd, gate, error pipe, plan memfd

static void close_all(const int *fds, int count) {
    for (int i = 0; i < count; i++)
        if (fds[i] >= 0) close(fds[i]);
}

/// sendmsg of one whole message with `nfds` fds attached, retrying EINTR. 0, or -1 with errno.
static int send_message(int socket_fd, struct iovec *iov, int iovcnt, const int *fds, int nfds) {
    union {
        char buf[CMSG_SPACE(sizeof(int) * REQUEST_FDS_MAX)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
    if (nfds > 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
    ssize_t n;
    do {
        n = sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if ((size_t)n != total) {
        errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

// ---- The server -------------------------------------------------------------------------------

/// Requests land here: the header, then the filesystem plan right after it (8-aligned, as the
/// child reads it in place through its copy-on-write copy of this buffer).
static _Alignas(16) unsigned char request_buffer[sizeof(struct edgy_forkserver_request) + EDGY_FORKSERVER_MAX_FS +
                                                   EDGY_FORKSERVER_MAX_MOVES];

/// Writes 0 to DIR/tasks: moves the calling (only) thread into that group. 0, or -1 with errno.
static int move_self(const char *dir) {
    char path[4096];
    int len = snprintf(path, sizeof path, "%s/tasks", dir);
    if (len < 0 || (size_t)len >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t w = write(fd, "0", 1);
    int saved = errno;
    close(fd);
    errno = saved;
    return w == 1 ? 0 : -1;
}

/// Splits the moves section into its GROUP/HOME pairs; -1 when it is not whole NUL-terminated
/// pairs (at most EDGY_FORKSERVER_MAX_MOVE_PAIRS).
static int parse_moves(const char *moves, size_t len, const char **groups, const char **homes) {
    if (len == 0) return 0;
    if (moves[len - 1] != 0) return -1;
    int strings = 0;
    const char *list[2 * EDGY_FORKSERVER_MAX_MOVE_PAIRS];
    for (size_t at = 0; at < len;) {
        if (strings == 2 * EDGY_FORKSERVER_MAX_MOVE_PAIRS || moves[at] == 0) return -1;
        list[strings++] = moves + at;
        at += strlen(moves + at) + 1;
    }
    if (strings % 2 != 0) return -1;
    for (int i = 0; i < strings / 2; i++) {
        groups[i] = list[2 * i];
        homes[i] = list[2 * i + 1];
    }
    return strings / 2;
}

static void reply(int socket_fd, const struct edgy_forkserver_reply *answer, const int *fds, int nfds) {
    struct iovec iov = {.iov_base = (void *)answer, .iov_len = sizeof *answer};
    // A daemon that went away sees nothing; the next recvmsg ends the loop with EOF.
    (void)send_message(socket_fd, &iov, 1, fds, nfds);
}

int edgy_forkserver_serve(int socket_fd) {
    for (;;) {
        union {
            char buf[CMSG_SPACE(sizeof(int) * (REQUEST_FDS_MAX + 1))];
            struct cmsghdr align;
        } control;
        struct iovec iov = {.iov_base = request_buffer, .iov_len = sizeof request_buffer};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf};
        ssize_t n = recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) return 0;
        if (n < 0) return 1;

        int fds[REQUEST_FDS_MAX];
        int nfds = edgy_take_fds(&msg, fds, REQUEST_FDS_MAX);
        const struct edgy_forkserver_request *request = (const void *)request_buffer;
        struct edgy_forkserver_reply answer;
        memset(&answer, 0, sizeof answer);
        answer.magic = EDGY_FORKSERVER_MAGIC;
        answer.version = EDGY_FORKSERVER_VERSION;
        answer.pid = -1;
        answer.error.op_index = -1;
        answer.error.listener_fd = -1;

        // The handshake, whatever the version: a client that speaks another one learns ours.
        if (nfds == 0 && (size_t)n == offsetof(struct edgy_forkserver_request, fs_len) &&
            request->magic == EDGY_FORKSERVER_MAGIC && request->op == EDGY_FORKSERVER_PING) {
            answer.sequence = request->sequence;
            reply(socket_fd, &answer, NULL, 0);
            continue;
        }

        // Everything is checked before a clone: sizes, the fd count the shape implies, and the
        // plan's own length field (the child trusts its offsets only within that length).
        size_t header = sizeof *request;
        int valid = nfds >= 0 && (size_t)n >= header && !(msg.msg_flags & MSG_TRUNC) &&
                    request->magic == EDGY_FORKSERVER_MAGIC && request->version == EDGY_FORKSERVER_VERSION &&
                    request->op == EDGY_FORKSERVER_SPAWN && request->shape_size == sizeof(struct edgy_shape);
        if (valid) {
            answer.sequence = request->sequence;
            size_t payload = (size_t)n - header;
            int expected_fds = 3 + (request->shape.cgroup_fd >= 0 ? 1 : 0);
            valid = request->fs_len <= EDGY_FORKSERVER_MAX_FS && request->moves_len <= EDGY_FORKSERVER_MAX_MOVES &&
                    request->fs_len + request->moves_len == payload && nfds == expected_fds;
            size_t fs_len = valid ? (size_t)request->fs_len : 0;
            valid = valid && (fs_len == 0 || (fs_len >= sizeof(uint64_t) &&
                                              *(const uint64_t *)(request_buffer + header) == fs_len));
        }
        const char *groups[EDGY_FORKSERVER_MAX_MOVE_PAIRS], *homes[EDGY_FORKSERVER_MAX_MOVE_PAIRS];
        int pairs = valid ? parse_moves((const char *)request_buffer + header + request->fs_len, request->moves_len,
                                        groups, homes) : -1;
        valid = valid && pairs >= 0;
        if (!valid) {
            if (nfds > 0) close_all(fds, nfds);
            answer.result = -2;
            answer.error.err = EPROTO;
            reply(socket_fd, &answer, NULL, 0);
            continue;
        }

        struct edgy_shape shape = request->shape;
        shape.stdin_fd = fds[0];
        shape.stdout_fd = fds[1];
        shape.stderr_fd = fds[2];
        shape.cgroup_fd = nfds == 4 ? fds[3] : -1;
        shape.fs = request->fs_len ? (const struct edgy_fs_plan *)(request_buffer + header) : NULL;
        // Into the jail's groups (all or none), clone, and back.
        int entered = 0;
        while (entered < pairs && move_self(groups[entered]) == 0) entered++;
        int left_all = 1;
        if (entered < pairs) {
            for (int i = 0; i < entered; i++) left_all &= move_self(homes[i]) == 0;
            entered = 0;
        }
        // At the requester's priority: the clone and the child's setup until it parks inherit it.
        // The server itself goes back to the foreground at once, or a request's clone would wait
        // for a core behind everything else.
        int background = request->policy == SCHED_IDLE;
        struct sched_param no_priority = {0};
        int nice = request->nice < 0 ? 0 : request->nice > EDGY_BACKGROUND_NICE ? EDGY_BACKGROUND_NICE : request->nice;
        if (background) sched_setscheduler(0, SCHED_IDLE, &no_priority);
        if (nice != 0) setpriority(PRIO_PROCESS, 0, nice);
        struct edgy_pending pending;
        answer.result = edgy_spawn_start_flags(&shape, &pending, &answer.error, CLONE_PARENT);
        if (background) sched_setscheduler(0, SCHED_OTHER, &no_priority);
        if (nice != 0) setpriority(PRIO_PROCESS, 0, 0);
        answer.pid = pending.pid;
        answer.joined_cgroup = pairs > 0 && entered == pairs;
        for (int i = 0; i < entered; i++) left_all &= move_self(homes[i]) == 0;
        close_all(fds, nfds);
        if (answer.result == 0) {
            int out[REPLY_FDS] = {pending.pidfd, pending.gate_fd, pending.error_fd, pending.plan_fd};
            reply(socket_fd, &answer, out, REPLY_FDS);
            close_all(out, REPLY_FDS);
        } else {
            reply(socket_fd, &answer, NULL, 0);
        }
        // Stuck in a jail's group, the server would be killed with that jail: leave now, and
        // let edgyd start another.
        if (!left_all) return 1;
    }
}

// ---- The client (in the daemon) ---------------------------------------------------------------

int edgy_forkserver_spawn(int socket_fd, uint64_t sequence, const struct edgy_shape *shape, const char *moves,
                          uint32_t moves_len, int *joined_cgroup, struct edgy_pending *pending,
                          struct edgy_child_error *error) {
    *joined_cgroup = 0;
    memset(error, 0, sizeof *error);
    error->op_index = -1;
    error->listener_fd = -1;
    pending->pid = -1;
    pending->pidfd = pending->gate_fd = pending->error_fd = pending->plan_fd = pending->listener_fd = -1;
    pending->tracer_pid = -1;
    pending->trace_without_listener = 0;

    struct edgy_forkserver_request request;
    memset(&request, 0, sizeof request);
    request.magic = EDGY_FORKSERVER_MAGIC;
    request.version = EDGY_FORKSERVER_VERSION;
    request.op = EDGY_FORKSERVER_SPAWN;
    request.shape_size = sizeof(struct edgy_shape);
    request.sequence = sequence;
    request.shape = *shape;
    request.shape.fs = NULL;
    request.fs_len = shape->fs ? shape->fs->blob_len : 0;
    request.moves_len = moves ? moves_len : 0;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);  // this thread's
    request.nice = errno == 0 ? nice : 0;
    request.policy = sched_getscheduler(0);
    pending->background = edgy_is_background(request.policy, request.nice);
    if (request.fs_len > EDGY_FORKSERVER_MAX_FS || request.moves_len > EDGY_FORKSERVER_MAX_MOVES) {
        errno = EMSGSIZE;
        return -2;
    }
    struct iovec iov[3] = {
        {.iov_base = &request, .iov_len = sizeof request},
        {.iov_base = (void *)shape->fs, .iov_len = (size_t)request.fs_len},
        {.iov_base = (void *)moves, .iov_len = request.moves_len},
    };
    int fds[REQUEST_FDS_MAX] = {shape->stdin_fd, shape->stdout_fd, shape->stderr_fd, shape->cgroup_fd};
    if (send_message(socket_fd, iov, 3, fds, shape->cgroup_fd >= 0 ? 4 : 3) != 0) return -2;

    struct edgy_forkserver_reply answer;
    union {
        char buf[CMSG_SPACE(sizeof(int) * (REPLY_FDS + 1))];
        struct cmsghdr align;
    } control;
    struct iovec in = {.iov_base = &answer, .iov_len = sizeof answer};
    struct msghdr msg = {.msg_iov = &in, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    ssize_t n;
    do {
        n = recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n == 0) errno = ECONNRESET;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) errno = ETIMEDOUT;  // SO_RCVTIMEO
    if (n <= 0) return -2;
    int got[REPLY_FDS];
    int ngot = edgy_take_fds(&msg, got, REPLY_FDS);
    if (ngot < 0 || (size_t)n != sizeof answer || answer.magic != EDGY_FORKSERVER_MAGIC ||
        answer.version != EDGY_FORKSERVER_VERSION || answer.sequence != sequence ||
        (answer.result == 0 && ngot != REPLY_FDS) || (answer.result != 0 && ngot != 0)) {
        if (ngot > 0) close_all(got, ngot);
        errno = EPROTO;
        return -2;
    }
    if (answer.result == -2) {
        errno = answer.error.err ? answer.error.err : EPROTO;
        return -2;
    }
    if (answer.result != 0) {
        *error = answer.error;
        // A clone that failed after it happened (the id maps) was killed by the server; the
        // child is ours (CLONE_PARENT), so ours to reap.
        if (answer.pid > 0) {
            siginfo_t info;
            while (waitid(P_PID, (id_t)answer.pid, &info, WEXITED) != 0 && errno == EINTR) {}
        }
        return -1;
    }
    *joined_cgroup = answer.joined_cgroup == 1;
    pending->pid = answer.pid;
    pending->pidfd = got[0];
    pending->gate_fd = got[1];
    pending->error_fd = got[2];
    pending->plan_fd = got[3];
    return 0;
}

int edgy_forkserver_ping(int socket_fd, uint64_t sequence, uint32_t *server_version) {
    struct edgy_forkserver_request request;
    memset(&request, 0, sizeof request);
    request.magic = EDGY_FORKSERVER_MAGIC;
    request.version = EDGY_FORKSERVER_VERSION;
    request.op = EDGY_FORKSERVER_PING;
    request.sequence = sequence;
    struct iovec iov = {.iov_base = &request, .iov_len = offsetof(struct edgy_forkserver_request, fs_len)};
    if (send_message(socket_fd, &iov, 1, NULL, 0) != 0) return -2;
    struct edgy_forkserver_reply answer;
    ssize_t n;
    do {
        n = recv(socket_fd, &answer, sizeof answer, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0) errno = ECONNRESET;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) errno = ETIMEDOUT;
    if (n <= 0) return -2;
    // The first two fields are the same in every version.
    if ((size_t)n < 2 * sizeof(uint32_t) || answer.magic != EDGY_FORKSERVER_MAGIC) {
        errno = EPROTO;
        return -2;
    }
    *server_version = answer.version;
    return 0;
}

// ---- Starting the server (in the daemon) ------------------------------------------------------

int edgy_forkserver_launch(const char *path, int *socket_out, int *pidfd_out, pid_t *pid_out) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return -errno;
    // Requests carry the filesystem plan: room for the largest one (root may exceed wmem_max).
    int room = (int)(sizeof(struct edgy_forkserver_request) + EDGY_FORKSERVER_MAX_FS + 4096);
    if (setsockopt(pair[0], SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room) != 0)
        (void)setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    // A server that hangs is treated as dead: the client kills it and asks the next one.
    struct timeval timeout = {.tv_sec = 5, .tv_usec = 0};
    (void)setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    // dup2 onto fd 3 clears its CLOEXEC (glibc does so even when it already is fd 3).
    posix_spawn_file_actions_adddup2(&actions, pair[1], EDGY_FORKSERVER_SOCKET_FD);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {(char *)"edgy-forkserver", NULL};
    char *envp[] = {NULL};
    // This thread becomes the parent of every jail the server clones (CLONE_PARENT): leave their
    // SIGCHLD unblocked so that the kernel drops it, as `edgy_spawn_start` does for its own.
    sigset_t child_signal;
    sigemptyset(&child_signal);
    sigaddset(&child_signal, SIGCHLD);
    pthread_sigmask(SIG_UNBLOCK, &child_signal, NULL);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(pair[1]);
    if (rc != 0) {
        close(pair[0]);
        return -rc;
    }
    long pidfd = syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        int saved = errno;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        close(pair[0]);
        return -saved;
    }
    *socket_out = pair[0];
    *pidfd_out = (int)pidfd;
    *pid_out = pid;
    return 0;
}
