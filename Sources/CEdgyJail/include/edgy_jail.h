// Runs in the parent (declarations shared by both halves).
//
// A jail is spawned in two halves (see "Jail pool" below):
//  - its *shape* (`struct edgy_shape`): namespaces, id maps, cgroup, stdio, and its *filesystem
//    plan* (`shape->fs`): every mount, the root, /proc, /dev, /tmp, the workdir tmpfs, hostname,
//    loopback and, for most policies, the seccomp filter. Fixed at clone time. The child closes
//    every other fd, waits at the first gate (maps written, cgroup joined), builds the whole
//    filesystem and pivots into it, reports "prepared" on the error pipe and waits at the second
//    gate; it may wait there long before a request exists (a parked jail of the supervisor's pool).
//  - its *task plan* (`struct edgy_task_plan`): the task's files, argv/envp, rlimits, ids, and
//    the seccomp filter of the other policies.
//    Written by the parent into a memfd the child received at clone time, right before the second
//    gate opens. So the request path makes no mount at all.
// Both are position-independent blobs in the same format: a header (`struct edgy_fs_plan` or
// `struct edgy_task_plan`, both starting with `EDGY_PLAN_BLOB_HEADER`), then every
// string, path, file body, the op table, the argv/envp tables and the seccomp program, referred
// to by their byte offset from the start of the blob. The child allocates nothing.
#ifndef EDGY_JAIL_H
#define EDGY_JAIL_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The step of a spawn that failed: the parent's steps (Swift and spawn.c) and the child's
/// checklist (child.c). Stable numbers: they cross the error pipe. Every stage has its own name
/// (`edgy_stage_name`), which is what reports show as the setup error's stage.
enum edgy_stage {
    EDGY_STAGE_NONE = 0,
    EDGY_STAGE_CLONE = 1,            // parent: memfd, pipes or clone3 itself
    EDGY_STAGE_USERNS_MAP = 2,       // parent: writing uid_map / gid_map
    EDGY_STAGE_FIRST_GATE = 3,       // child: waiting for the parent to write the maps and join the cgroup
    EDGY_STAGE_FDS = 4,              // child: stdio onto 0..2, everything else closed
    EDGY_STAGE_SIGNAL_DISPOSITIONS = 5, // child: every disposition back to default
    EDGY_STAGE_SETSID = 6,
    EDGY_STAGE_NS_ROOT = 7,          // child: become root of the new user namespace
    EDGY_STAGE_CGROUP_NS = 8,
    EDGY_STAGE_MOUNT_PRIVATE = 9,
    EDGY_STAGE_MOUNT_ROOT = 10,      // tmpfs for the new root
    EDGY_STAGE_FS_OP = 11,           // one op of the filesystem plan; error names the op index
    EDGY_STAGE_PIVOT_ROOT = 12,
    EDGY_STAGE_DETACH_OLD_ROOT = 13,
    EDGY_STAGE_REMOUNT_ROOT_RO = 14,
    EDGY_STAGE_CHDIR = 15,
    EDGY_STAGE_HOSTNAME = 16,
    EDGY_STAGE_LOOPBACK = 17,
    EDGY_STAGE_RLIMIT = 18,          // error names the resource
    EDGY_STAGE_SETGROUPS = 19,
    EDGY_STAGE_SETRESGID = 20,
    EDGY_STAGE_CAP_BOUNDING = 21,
    EDGY_STAGE_SECUREBITS = 22,
    EDGY_STAGE_SETRESUID = 23,
    EDGY_STAGE_CAPS = 24,
    EDGY_STAGE_NO_NEW_PRIVS = 25,
    EDGY_STAGE_SECCOMP_LOAD = 26,    // child: seccomp(2) refused the compiled filter
    EDGY_STAGE_EXECVE = 27,
    EDGY_STAGE_PDEATHSIG = 28,       // child: parent-death signal while parked
    EDGY_STAGE_TASK_PLAN_MAP = 29,   // child: mapping the task plan memfd (or a malformed plan)
    EDGY_STAGE_TASK_FILE = 30,       // child: one op of the task plan (its files); error names the op index
    EDGY_STAGE_USERNS_LIMITS = 31,   // child: the user namespace's own /proc/sys/user limits; names the index
    EDGY_STAGE_MOUNT_RECURSIVE = 32, // child: mount_setattr(AT_RECURSIVE) of one bind; names the op index
    EDGY_STAGE_SECOND_GATE = 33,     // child: waiting for the parent to write the task plan
    EDGY_STAGE_REPORT_PREPARED = 34, // child: telling the parent its filesystem is built
    EDGY_STAGE_SIGNAL_MASK = 35,     // child: emptying the signal mask after the second gate
    EDGY_STAGE_PDEATHSIG_AGAIN = 36, // child: parent-death signal again, after the id change cleared it
    EDGY_STAGE_SECCOMP_HANDOFF = 37, // child: telling the parent about its filter's listener, waiting for it to take it
    EDGY_STAGE_EGRESS_INTERFACE = 38, // child: address, link and default route of its end of the egress veth pair
    // Parent-side stages that have no C step; named here so that every stage has one name.
    EDGY_STAGE_EVENTFD = 64,         // parent: the attempt's cancellation eventfd
    EDGY_STAGE_PIPES = 65,           // parent: the jail's stdio pipes
    EDGY_STAGE_CGROUP = 66,          // parent: creating the jail's cgroup or attaching the child to it
    EDGY_STAGE_PLAN = 67,            // parent: the request cannot become a plan (bad paths, no command)
    EDGY_STAGE_SECCOMP_COMPILE = 68, // parent: the policy's seccomp section does not compile
    EDGY_STAGE_LOST_BEFORE_PREPARED = 69, // parent: the child died without a word before its filesystem was built
    EDGY_STAGE_LOST_AT_RELEASE = 70, // parent: the child died without a word before it was released
    EDGY_STAGE_SECCOMP_LISTENER = 71, // parent: taking the child's seccomp listener (pidfd_getfd)
    EDGY_STAGE_NETWORK = 72,         // parent: the jail's egress veth pair or its nftables rules
    EDGY_STAGE_SECCOMP_TRACER = 73,  // parent: a learning run without a listener could not trace the child either
    EDGY_STAGE_SETUP_DENIED = 74,    // parent: the filter loaded while parked stopped the jail's own start; names the syscall
};

/// Filesystem operations, applied in order. In the filesystem plan (before pivot_root) paths are
/// absolute host paths under the staging root (the parent prefixes them); in the task plan (after
/// pivot_root) they are paths inside the jail, under the working directory.
enum edgy_fs_op_kind {
    EDGY_OP_MKDIR = 1,      // path, mode
    EDGY_OP_MKFILE = 2,     // path: empty file, a mount point for a file bind
    EDGY_OP_BIND = 3,       // source -> path, then remounted with flags (MS_RDONLY etc.), on every submount too
    EDGY_OP_TMPFS = 4,      // path, flags, data = mount options
    EDGY_OP_PROC = 5,       // path, flags, data = mount options
    EDGY_OP_SYMLINK = 6,    // source = link target, path = the link
    EDGY_OP_WRITE_FILE = 7, // path, mode, data/data_len = content; owned by uid/gid
    EDGY_OP_CHOWN = 8,      // path owned by uid/gid (the jail's ids)
};

#define EDGY_OP_OPTIONAL 0x1u   // a missing bind source is skipped, not an error

struct edgy_fs_op {
    uint32_t kind;
    uint32_t op_flags;          // EDGY_OP_OPTIONAL
    uint64_t mount_flags;       // MS_* for BIND remount, TMPFS, PROC
    uint32_t mode;
    uint32_t uid, gid;          // for WRITE_FILE / CHOWN (ids inside the jail)
    uint32_t reserved;
    uint64_t path;              // blob offset of a NUL-terminated string
    uint64_t source;            // blob offset, or 0
    uint64_t data;              // blob offset, or 0
    uint64_t data_len;
};

struct edgy_rlimit {
    int32_t resource;
    int32_t reserved;
    uint64_t soft, hard;
};

#define EDGY_MAX_RLIMITS 16

/// What a jail is cloned with; the parent's memory, read by the child before the gate (it is the
/// child's copy-on-write copy).
struct edgy_shape {
    /// CLONE_NEW* flags for clone3. CLONE_NEWCGROUP is applied after the gate with unshare, so that
    /// the cgroup namespace is rooted at the jail's own cgroup.
    uint64_t namespaces;
    /// Open O_PATH|O_DIRECTORY fd of the jail's cgroup v2 directory for CLONE_INTO_CGROUP, or -1.
    int32_t cgroup_fd;

    /// User namespace mapping: inside ids [0, count) map to [host_base, host_base + count).
    int32_t user_namespace;
    uint32_t host_uid_base, host_gid_base, id_count;

    /// File descriptors in the parent that become the child's 0, 1 and 2.
    int32_t stdin_fd, stdout_fd, stderr_fd;

    /// Signal delivered to the jail when the thread that cloned it dies (0 = none): set while
    /// parked at the gate and again after the id change, which clears it.
    int32_t parent_death_signal;

    /// Egress: the jail's end of its veth pair (`EDGY_EGRESS_INTERFACE`, moved into the jail's
    /// network namespace by the parent before the first gate) gets `egress_address`/`egress_prefix`
    /// and a default route through `egress_gateway`. Network byte order; 0 = no egress.
    uint32_t egress_address, egress_gateway;
    int32_t egress_prefix;

    /// The filesystem plan blob, in the parent's memory: the child reads its copy-on-write copy,
    /// so it must stay alive only until `edgy_spawn_start` returns.
    const struct edgy_fs_plan *_Nullable fs;
};

/// The name of the jail's end of its egress veth pair, inside its network namespace.
#define EDGY_EGRESS_INTERFACE "eth0"

/// Both plan blobs start with these three fields, so that one routine applies the ops of either.
/// Every `uint64_t` offset is from the start of the blob (its header); offset 0 means "absent"
/// (the header itself lives there, so no string can).
#define EDGY_PLAN_BLOB_HEADER \
    uint64_t blob_len;  /* the whole blob, header included */ \
    uint64_t ops;       /* offset of `n_ops` struct edgy_fs_op, 8-aligned */ \
    uint32_t n_ops;

/// The filesystem plan: what a jail builds between its two gates, from the policy alone.
struct edgy_fs_plan {
    EDGY_PLAN_BLOB_HEADER
    int32_t unshare_cgroup;

    uint64_t root;              // staging path, becomes "/" (tmpfs)
    uint64_t root_options;      // tmpfs options for the root
    uint64_t hostname;          // or 0
    int32_t loopback_up;
    int32_t user_namespace;     // become root of the user namespace after the gate
    uint32_t last_cap;          // highest capability number the kernel knows, for the bounding set

    /// `n_userns_limits` pairs of offsets (file name under /proc/sys/user, decimal value), written
    /// from inside the new user namespace before anything else is charged to it.
    uint64_t userns_limits;
    uint32_t n_userns_limits;

    /// seccomp loaded while parked, last of the filesystem half, with its listener handed over
    /// then: the same pair as the task plan's, which is empty when this one is not. Only for a
    /// filter that allows every call the child makes after its second gate (Swift's
    /// `ParkedFilter`), so the filter's load and handoff leave the path from request to exec.
    uint64_t seccomp_filter;
    uint32_t seccomp_len;
    uint64_t seccomp_fallback;
    uint32_t seccomp_fallback_len;
};

/// The task plan: the task's files, argv/envp, rlimits, ids and seccomp, written into the jail's
/// memfd right before the second gate opens.
struct edgy_task_plan {
    EDGY_PLAN_BLOB_HEADER
    uint64_t workdir;           // path inside the jail, the cwd

    uint64_t exec_path;         // path to execve; no '/' means search `search_path`
    uint64_t search_path;       // colon-separated directories, or 0
    uint64_t argv;              // offset of an array of uint64_t offsets, argc entries
    uint32_t argc;
    uint64_t envp;              // offset of an array of uint64_t offsets, envc entries
    uint32_t envc;

    struct edgy_rlimit rlimits[EDGY_MAX_RLIMITS];
    uint32_t n_rlimits;

    uint32_t uid, gid;          // the workload's ids inside the jail

    /// seccomp: a `struct sock_filter` array of `seccomp_len` instructions (8-aligned), or none.
    /// Its kills are user notifications, loaded with a listener the supervisor takes over.
    uint64_t seccomp_filter;
    uint32_t seccomp_len;
    /// The same filter with its kills as `kill_process`: loaded instead when the kernel refuses a
    /// listener (EBUSY: the supervisor itself runs under a filter that has one).
    uint64_t seccomp_fallback;
    uint32_t seccomp_fallback_len;
};

/// Namespace and statvfs flags, here because Swift's Glibc module does not export them.
#define EDGY_CLONE_NEWNS 0x00020000ULL
#define EDGY_CLONE_NEWCGROUP 0x02000000ULL
#define EDGY_CLONE_NEWUTS 0x04000000ULL
#define EDGY_CLONE_NEWIPC 0x08000000ULL
#define EDGY_CLONE_NEWUSER 0x10000000ULL
#define EDGY_CLONE_NEWPID 0x20000000ULL
#define EDGY_CLONE_NEWNET 0x40000000ULL
#define EDGY_ST_NOEXEC 8UL
#define EDGY_ST_NOATIME 1024UL
#define EDGY_ST_NODIRATIME 2048UL
#define EDGY_ST_RELATIME 4096UL

/// What the child reports through the error pipe: a failed step, or (stage NONE) a notice: that
/// its filesystem is built, or after the second gate that its seccomp filter is loaded.
struct edgy_child_error {
    int32_t stage;
    int32_t err;        // errno
    int32_t op_index;   // the op, limit or resource the stage names (see enum edgy_stage), else -1
    int32_t listener_fd; // in the seccomp notice: the child's fd of its filter's listener, or -1
};

/// A child held at the gate.
struct edgy_pending {
    pid_t pid;
    int32_t pidfd;
    int32_t gate_fd;    // write end: one byte releases the child, close aborts it
    int32_t error_fd;   // read end of the child's CLOEXEC error pipe
    int32_t plan_fd;    // the memfd the task plan blob is written to (the child has it as fd 5)
    int32_t listener_fd; // after release: the seccomp listener taken from the child, or -1;
                         // or, with `tracer_pid`, the channel of the learning tracer
    int32_t trace_without_listener; // in (learning runs): where the child gets no listener, trace it
    int32_t filter_while_parked; // in: the filesystem plan loads the filter; prepare takes its listener
    pid_t tracer_pid;    // after release: the learning tracer (edgy_tracer_start), or -1
    int32_t background;  // cloned in the background (the pool's): release restores the priority
};

/// Clones a child of the given shape, writes its id maps and leaves it waiting at the first gate
/// with only its stdio, the error pipe, the gate and the plan memfd open. Returns 0, or -1 with
/// `*error` describing the failed parent step. Then (cgroup v1: after the attach) call
/// `edgy_spawn_prepare`.
///
/// All signals but SIGCHLD are blocked across the clone so no handler runs in the child before it
/// resets them (a new child cannot receive SIGCHLD before it has children). The calling thread
/// keeps SIGCHLD unblocked afterwards, so that the kernel drops its jails' exit signals.
/// The child's parent-death signal is tied to the calling thread.
int edgy_spawn_start(const struct edgy_shape *_Nonnull shape, struct edgy_pending *_Nonnull pending,
                     struct edgy_child_error *_Nonnull error);

/// `edgy_spawn_start` with more clone3 flags: the fork server passes CLONE_PARENT, so that its
/// jails are children of the daemon (which waits for them through their pidfds) and their
/// parent-death signal is tied to the daemon's thread that started the fork server. It leaves
/// `pending->background` 0: the server's client sets it from the request it sent.
int edgy_spawn_start_flags(const struct edgy_shape *_Nonnull shape, struct edgy_pending *_Nonnull pending,
                           struct edgy_child_error *_Nonnull error, uint64_t extra_flags);

// ---- The fork server (forkserver.c) -----------------------------------------------------------
//
// A small single-threaded process (`edgy-forkserver`) that clones jails from its own small address
// space, so that the daemon's page tables are neither copied nor write-protected at every start.
// One SOCK_SEQPACKET message per request and per reply:
//
//   request: struct edgy_forkserver_request, then `fs_len` bytes of the filesystem plan blob, then
//            `moves_len` bytes of cgroup v1 moves: NUL-terminated directory pairs "GROUP\0HOME\0…"
//            (the jail's group and the server's own group in each hierarchy; empty on v2);
//            SCM_RIGHTS: stdin, stdout, stderr, then the cgroup fd when `shape.cgroup_fd >= 0`.
//   reply:   struct edgy_forkserver_reply; SCM_RIGHTS (when `result == 0`): pidfd, gate, error
//            pipe, plan memfd, the same four fds `edgy_spawn_start` leaves in `edgy_pending`.
//
// With moves, the server writes 0 to each GROUP's `tasks` (moving itself, which skips the kernel's
// global threadgroup lock that attaching another process takes), clones, and writes 0 to each
// HOME's `tasks`: the child starts inside its groups (`joined_cgroup`), and needs no attach.
//
// The fd numbers inside `shape` are ignored: the server uses the ones it received. Everything else
// (prepare, release, abort, waitid) the daemon does itself, with the fds it got back.

/// The nice value of the thread that fills the warm pool, which also runs under `SCHED_IDLE`: its
/// clones (and, through the request's `nice` and `policy`, the fork server's) and the children's
/// setup until they park yield the cores to requests at once. `edgy_spawn_release` gives the child
/// the releasing thread's policy and priority before it execs.
#define EDGY_BACKGROUND_NICE 19

#define EDGY_FORKSERVER_MAGIC 0x45444653u  /* "EDFS" */
/// Bumped whenever a request or reply changes: edgyd and its server must be built together.
#define EDGY_FORKSERVER_VERSION 5u
#define EDGY_FORKSERVER_SPAWN 1u
/// The handshake: a request of any version with this op and no payload is answered with the
/// server's own version (in `version`) and result 0, so that a mismatch is found before a spawn.
#define EDGY_FORKSERVER_PING 2u
/// The largest filesystem plan a request may carry; a larger one is cloned in process.
#define EDGY_FORKSERVER_MAX_FS (1u << 20)
/// The largest cgroup moves section, and the most directory pairs in it.
#define EDGY_FORKSERVER_MAX_MOVES 8192u
#define EDGY_FORKSERVER_MAX_MOVE_PAIRS 16
/// The fd the server is given its socket on.
#define EDGY_FORKSERVER_SOCKET_FD 3

struct edgy_forkserver_request {
    uint32_t magic, version, op, shape_size;
    uint64_t sequence;
    uint64_t fs_len;
    uint32_t moves_len;
    /// The requesting thread's nice value: the server clones at it, so that the pool's spawns (its
    /// thread runs at `EDGY_BACKGROUND_NICE`) yield the cores to requests. Clamped to 0…19.
    int32_t nice;
    /// The requesting thread's scheduling policy: `SCHED_IDLE` (the pool's thread) or anything else,
    /// which the server takes as `SCHED_OTHER`.
    int32_t policy;
    struct edgy_shape shape;
};

struct edgy_forkserver_reply {
    uint32_t magic, version;
    uint64_t sequence;
    int32_t result;     // edgy_spawn_start's (0 or -1), or -2: the request was malformed (error.err says why)
    int32_t pid;
    struct edgy_child_error error;
    int32_t joined_cgroup;  // 1: the child was cloned inside the groups of the request's moves
    int32_t reserved;
};

/// The server's loop on `socket_fd`: one spawn per request until EOF. Returns 0 at EOF, 1 when the
/// socket fails.
int edgy_forkserver_serve(int socket_fd);

/// One spawn through the fork server on `socket_fd`: like `edgy_spawn_start` (0, or -1 with
/// `*error`), or -2 with errno when the exchange itself failed (the server died, hung past the
/// socket's receive timeout, or answered out of turn): the caller restarts the server and retries.
/// Not thread-safe: one request at a time per socket.
int edgy_forkserver_spawn(int socket_fd, uint64_t sequence, const struct edgy_shape *_Nonnull shape,
                          const char *_Nullable moves, uint32_t moves_len, int *_Nonnull joined_cgroup,
                          struct edgy_pending *_Nonnull pending, struct edgy_child_error *_Nonnull error);

/// The handshake: 0 with the server's protocol version in `*server_version`, or -2 with errno when
/// the exchange failed.
int edgy_forkserver_ping(int socket_fd, uint64_t sequence, uint32_t *_Nonnull server_version);

/// Starts the server at `path` on a new socketpair (the calling thread becomes the parent of every
/// jail it clones: keep it alive; it is left with SIGCHLD unblocked, as `edgy_spawn_start` leaves
/// its caller). Returns 0 with our end of the socket (5 s receive timeout), a
/// pidfd and the pid of the server, or -errno.
int edgy_forkserver_launch(const char *_Nonnull path, int *_Nonnull socket_out, int *_Nonnull pidfd_out,
                           pid_t *_Nonnull pid_out);

/// Opens the first gate and waits until the child has built its filesystem (from `shape->fs`) and
/// waits at the second gate. With `filter_while_parked`, the child loads its filter first and
/// tells us; its listener goes into `pending->listener_fd` (the caller owns it) before the child
/// goes on. Returns 0 when it is prepared, 1 when it reported `*error` (it has exited:
/// `edgy_spawn_abort` reaps it), -1 with errno set when it died without a word.
int edgy_spawn_prepare(struct edgy_pending *_Nonnull pending, struct edgy_child_error *_Nonnull error);

/// Writes the task plan blob into the child's memfd, opens the second gate and waits for the child to exec or
/// fail. Closes the gate, error and plan fds. When the child loads a filter with a listener, takes
/// the listener into `pending->listener_fd` (the caller owns it) before letting the child exec. A
/// filter loaded while parked already has its listener here: when it speaks and the child neither
/// execs nor reports within 5 s, a call of the child's own start was stopped (nothing answers it
/// yet): the child is killed, reported as `EDGY_STAGE_SETUP_DENIED` naming the syscall, instead of
/// waiting forever. Returns 0 when `execve` succeeded, 1 when the child reported `*error` (it has
/// exited and still needs a reap), -1 on a parent-side failure with errno set (e.g. EPIPE: the
/// child died at the gate).
int edgy_spawn_release(struct edgy_pending *_Nonnull pending, const void *_Nonnull blob, size_t blob_len,
                       struct edgy_child_error *_Nonnull error);

/// Kills a child still at a gate (SIGKILL through its pidfd, then its fds closed: a child waiting
/// for the listener handoff's answer reads EOF as its word to exec) and reaps it.
void edgy_spawn_abort(struct edgy_pending *_Nonnull pending);

/// Raw `waitid(P_PIDFD, pidfd, ..., WEXITED, rusage)` retried on EINTR. Returns 0 or -errno.
struct rusage;
int edgy_waitid_pidfd(int pidfd, int *_Nonnull code_out, int *_Nonnull status_out, struct rusage *_Nullable usage,
                      int nohang);

/// `pidfd_send_signal` through the raw syscall. Returns 0 or -errno.
int edgy_pidfd_send_signal(int pidfd, int sig);

/// One seccomp user notification: the task that made a syscall its filter does not allow.
struct edgy_seccomp_violation {
    uint64_t id;        // the notification's cookie
    pid_t pid;          // the thread, as the supervisor's PID namespace sees it
    int32_t nr;         // the syscall number in its ABI
    uint32_t arch;      // AUDIT_ARCH_* of that ABI
    uint64_t args[6];   // the syscall's arguments, as the registers held them
};

/// SECCOMP_IOCTL_NOTIF_RECV on `listener`: 0, or -errno (ENOENT: the task died meanwhile).
int edgy_seccomp_receive(int listener, struct edgy_seccomp_violation *_Nonnull violation);

/// SECCOMP_IOCTL_NOTIF_SEND for notification `id`: with `error == 0` the syscall runs as if the
/// filter had allowed it (SECCOMP_USER_NOTIF_FLAG_CONTINUE); otherwise it fails with `error` (a
/// positive errno) and never runs. 0, or -errno (ENOENT: the task died meanwhile).
int edgy_seccomp_respond(int listener, uint64_t id, int error);

/// The supervisor's answer to one traced call: 0 continues it, an errno skips it with that error.
struct edgy_trace_answer {
    uint64_t id;
    int32_t error;
};

/// Forks the learning tracer (tracer.c) for the parked child `pid`, which it PTRACE_SEIZEs with
/// TRACESECCOMP, FORK/VFORK/CLONE and EXITKILL before this returns. 0 with `*channel` (SOCK_SEQPACKET,
/// CLOEXEC: one `struct edgy_seccomp_violation` per trace stop, answered with `edgy_tracer_respond`)
/// and `*tracer`; or -errno (the seize's, when ptrace was refused).
int edgy_tracer_start(pid_t pid, int32_t *_Nonnull channel, pid_t *_Nonnull tracer);

/// The next traced call: 0, or -errno (-EPIPE: the tracer is gone).
int edgy_tracer_receive(int channel, struct edgy_seccomp_violation *_Nonnull call);

/// Answers traced call `id`: 0 lets it run, a positive errno skips it with that error.
int edgy_tracer_respond(int channel, uint64_t id, int error);

/// Kills and reaps the tracer (its tracees detach; PTRACE_O_EXITKILL kills any still alive).
void edgy_tracer_stop(pid_t tracer);

/// Reads a NUL-terminated string of at most `size - 1` bytes at `address` in process `pid`
/// (process_vm_readv, a page at a time so that a string ending just before unmapped memory still
/// reads). Returns its length (the buffer is NUL-terminated), or -errno; -ENAMETOOLONG when no NUL
/// came within `size - 1` bytes.
long edgy_read_remote_string(pid_t pid, uint64_t address, char *_Nonnull buffer, size_t size);

/// Reads exactly `size` bytes at `address` in process `pid`: `size`, or -errno.
long edgy_read_remote(pid_t pid, uint64_t address, void *_Nonnull buffer, size_t size);

/// The process (thread group) of thread `tid`, from /proc/TID/status; `tid` itself if unreadable
/// (kill(2) of a thread id reaches its whole process too).
pid_t edgy_thread_group(pid_t tid);

/// SECCOMP_IOCTL_NOTIF_ID_VALID: 1 while the task of notification `id` still waits for an answer.
int edgy_seccomp_waiting(int listener, uint64_t id);

/// The highest capability number the running kernel knows (from /proc), for the bounding-set drop.
int edgy_last_cap(void);

/// Puts the calling thread in the background: `SCHED_IDLE` and `EDGY_BACKGROUND_NICE`. Returns 0,
/// or -1 with errno when either fails.
int edgy_enter_background(void);

/// Whether a scheduling policy and nice value are the background's: `SCHED_IDLE` or nice > 0.
int edgy_is_background(int policy, int nice);

/// `edgy_is_background` of the calling thread's own values.
int edgy_thread_in_background(void);

/// pipe2(O_CLOEXEC) and eventfd(EFD_CLOEXEC|EFD_NONBLOCK): -1 and errno on failure.
int edgy_pipe_cloexec(int fds[_Nonnull 2]);
int edgy_eventfd(void);
/// mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD): 1 when both took.
int edgy_malloc_keep(int mmap_threshold, int trim_threshold);

/// A SOCK_SEQPACKET unix socket listening on `path`, mode 0600, close-on-exec; or -errno.
int edgy_seqpacket_listen(const char *_Nonnull path, int backlog);
/// A SOCK_SEQPACKET connection to `path`; or -errno.
int edgy_seqpacket_connect(const char *_Nonnull path);
/// accept4(SOCK_CLOEXEC), retried on EINTR: the connection, or -errno.
int edgy_accept_cloexec(int listener);
/// The uid and pid of the process at the other end of `socket_fd` (SO_PEERCRED). 0, or -errno.
int edgy_peer_credentials(int socket_fd, uint32_t *_Nonnull uid, int32_t *_Nonnull pid);
/// One message into `buffer` and at most `max_fds` (≤ 8) SCM_RIGHTS fds, close-on-exec. Returns
/// the message's length (0 at EOF), or -errno; -EMSGSIZE for a message or fd list that did not
/// fit, whose fds are all closed.
long edgy_recv_with_fds(int socket_fd, void *_Nonnull buffer, size_t size, int *_Nonnull fds, int max_fds,
                        int *_Nonnull fd_count);

/// The stage's name as reports show it, e.g. "filesystem", "execve"; "unknown" for a number that
/// names no stage. Distinct for every stage.
const char *_Nonnull edgy_stage_name(enum edgy_stage stage);

#ifdef __cplusplus
}
#endif

#endif
