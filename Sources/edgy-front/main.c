// `edgy`: the command's front end, in C so that it starts in well under a millisecond.
//
// `edgy run` is the command whose start-up matters (one jail per call, from scripts). When an
// `edgy helper` listens on its socket, the front end hands it the run: the helper is already
// started, holds the policy's compiled filter and keeps jails of that shape warm, so the run costs
// about one pooled jail. Anything else, and every run the helper declines or cannot take, goes to
// the Swift CLI (`edgy-cli`, installed beside this file) by execv, with the same arguments.
//
// The protocol (the helper's side is Sources/EdgyCLI/RunHelper.swift): one SOCK_SEQPACKET
// connection per run. The request is one message: the magic "EDGYRUN1", then each argument after
// `run`, NUL-terminated; attached with SCM_RIGHTS, the working directory (O_PATH) and fds 1 and 2,
// where the run's output and report go. The reply is one message: "F" (run it yourself), or "S"
// followed by the exit status as 4 bytes, little-endian.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define EDGY_FAILED 125                        // EdgyExitCode.edgyFailed
#define DEFAULT_SOCKET "/run/edgy/run.sock"    // RunHelper.defaultSocket
#define MAGIC "EDGYRUN1"
#define MAX_REQUEST 65536                      // RunHelperRequest.maxBytes

static char request[MAX_REQUEST];

/// Replaces this process with `edgy-cli` beside it, keeping argv.
static void exec_cli(char **argv) {
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    if (n > 0) {
        path[n] = 0;
        char *slash = strrchr(path, '/');
        if (slash) {
            strcpy(slash + 1, "edgy-cli");
            execv(path, argv);
        }
    }
    fprintf(stderr, "edgy: cannot run edgy-cli beside %s: %s\n", n > 0 ? path : "this executable", strerror(errno));
    exit(EDGY_FAILED);
}

/// Hands `edgy run ARGS` to the helper on `socket_path`. Returns when the run is not the helper's
/// (no helper, a request too large, or it declined), so that the caller runs it; exits otherwise.
static void run_through_helper(const char *socket_path, int argc, char **argv) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof address.sun_path) return;
    strcpy(address.sun_path, socket_path);

    size_t length = sizeof MAGIC - 1;
    memcpy(request, MAGIC, length);
    for (int i = 2; i < argc; i++) {
        size_t size = strlen(argv[i]) + 1;
        if (size > sizeof request - length) return;
        memcpy(request + length, argv[i], size);
        length += size;
    }

    int connection = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (connection < 0) return;
    // Only a helper running as this user gets the run (and this user's stdout and stderr).
    struct ucred peer;
    socklen_t peer_size = sizeof peer;
    if (connect(connection, (struct sockaddr *)&address, sizeof address) != 0 ||
        getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &peer, &peer_size) != 0 || peer.uid != geteuid()) {
        close(connection);
        return;
    }
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0) {
        close(connection);
        return;
    }
    int fds[3] = {cwd, 1, 2};
    union {
        char buffer[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {.iov_base = request, .iov_len = length};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
    struct cmsghdr *c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    ssize_t sent;
    do {
        sent = sendmsg(connection, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    close(cwd);
    if (sent != (ssize_t)length) {
        close(connection);
        return;
    }

    unsigned char reply[8];
    ssize_t got;
    do {
        got = recv(connection, reply, sizeof reply, 0);
    } while (got < 0 && errno == EINTR);
    int reset = got < 0 && errno == ECONNRESET;
    close(connection);
    // ECONNRESET: the helper closed without reading the request (it declined at its limit, or
    // refused this user), so nothing ran and the CLI may run it.
    if (reset || (got == 1 && reply[0] == 'F')) return;
    if (got == 5 && reply[0] == 'S') {
        uint32_t status = (uint32_t)reply[1] | (uint32_t)reply[2] << 8 | (uint32_t)reply[3] << 16 | (uint32_t)reply[4] << 24;
        exit((int)status);
    }
    // The helper took the run and ended without its report: the jail may have run, so it is not
    // run again here.
    fprintf(stderr, "edgy: the helper on %s ended before it reported the run\n", socket_path);
    exit(EDGY_FAILED);
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "run") == 0) {
        const char *socket_path = getenv("EDGY_HELPER_SOCKET");
        if (!socket_path || !*socket_path) socket_path = DEFAULT_SOCKET;
        if (strcmp(socket_path, "off") != 0) run_through_helper(socket_path, argc, argv);
    }
    exec_cli(argv);
}
