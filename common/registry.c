/* SPDX-License-Identifier: Apache-2.0 */
#include "registry.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "cjson-util.h"
#include "runc-args.h"
#include "sha256.h"
#include "spawn-child.h"
#include "util.h"

#define SKOPEO_BINARY "skopeo"
#define MANIFEST_MAX ((size_t)4 << 20) /* distribution's own limit for a manifest */
#define ERROR_TAIL 2048                /* the end of skopeo's stderr is its message */

/* skopeo's message: the end of what it wrote to fd, and of a logrus line
 * 'time=... level=fatal msg="..."' the message unquoted, on one line,
 * printable. A new string (NULL when out of memory). */
static char *error_tail(int fd) {
        off_t size = lseek(fd, 0, SEEK_END);
        if (size <= 0)
                return strdup("skopeo failed without a message");
        size_t n = size > ERROR_TAIL ? ERROR_TAIL : (size_t)size;
        _cleanup_free_ char *buf = calloc(1, n + 1);
        if (!buf || pread(fd, buf, n, size - (off_t)n) != (ssize_t)n)
                return NULL;
        const char *s = buf, *m = NULL; /* the last logrus line: the fatal one */
        for (const char *k = buf; (k = strstr(k, "msg=\"")); k++)
                m = k;
        if (m)
                s = m + 5;
        char *out = calloc(1, n + 1), *o = out;
        if (!out)
                return NULL;
        for (; *s; s++) {
                if (m && s[0] == '\\' && s[1]) { /* \" \n \t inside the quoted message */
                        s++;
                        *o++ = *s == 'n' || *s == 't' ? ' ' : *s;
                } else if (m && s[0] == '"')
                        break;
                else
                        *o++ = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
        }
        while (o > out && o[-1] == ' ')
                *--o = 0;
        /* Runs of spaces (from "\n\t" and line ends) as one. */
        char *w = out;
        for (const char *r = out; *r; r++)
                if (!(*r == ' ' && w > out && w[-1] == ' '))
                        *w++ = *r;
        *w = 0;
        return out;
}

/* What process pid has read and written so far, from /proc/PID/io. */
static int proc_io(pid_t pid, uint64_t *ret_read, uint64_t *ret_written) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? negative_errno() : -EIO;
        buf[n] = 0;
        const char *rc = strstr(buf, "rchar: "), *wc = strstr(buf, "wchar: ");
        if (!rc || !wc || sscanf(rc + 7, "%" SCNu64, ret_read) != 1 ||
            sscanf(wc + 7, "%" SCNu64, ret_written) != 1)
                return -EIO;
        return 0;
}

/* Waits for pid and tells o->progress what it read and wrote every
 * REGISTRY_PROGRESS_MSEC and once after it exited (its counters are read
 * before it is reaped). Returns 0 and its status, or a negative errno. */
static int wait_skopeo(const RegistryOptions *o, pid_t pid, int *ret_status) {
        if (o->progress) {
                _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
                for (;;) {
                        siginfo_t si = {};
                        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR)
                                return negative_errno();
                        uint64_t rd, wr;
                        if (proc_io(pid, &rd, &wr) >= 0)
                                o->progress(rd, wr, o->progress_userdata);
                        if (si.si_pid == pid)
                                break;
                        if (pidfd >= 0)
                                (void)poll(&(struct pollfd){.fd = pidfd, .events = POLLIN}, 1,
                                           REGISTRY_PROGRESS_MSEC);
                        else
                                (void)nanosleep(
                                        &(struct timespec){.tv_nsec = REGISTRY_PROGRESS_MSEC * 1000000L},
                                        NULL);
                }
        }
        while (waitpid(pid, ret_status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

/* Runs skopeo with argv; stdout and stderr go to memory files (no pipe to
 * drain while waiting), fd 3 is extra_fd when >= 0. 0 if it exited 0, with
 * at most max_out bytes of its stdout in *ret_out when asked; else -EIO (or
 * the spawn's error) and its message in *ret_error. o->progress is told
 * what it reads and writes. */
static int run_skopeo(const RegistryOptions *o, char **argv, int extra_fd, size_t max_out, char **ret_out,
                      char **ret_error) {
        *ret_error = NULL;
        _cleanup_close_ int out = memfd_create("skopeo-stdout", MFD_CLOEXEC);
        _cleanup_close_ int err = memfd_create("skopeo-stderr", MFD_CLOEXEC);
        if (out < 0 || err < 0)
                return negative_errno();
        SpawnOptions so = {
                .stdio = {SPAWN_NULL, out, err},
                .fds = extra_fd >= 0 ? &extra_fd : NULL,
                .n_fds = extra_fd >= 0 ? 1 : 0,
                .parent_death_signal = SIGKILL,
        };
        pid_t pid;
        int r = spawn_exec(argv, &so, &pid);
        if (r < 0) {
                *ret_error = strdup_printf("cannot run %s: %s", argv[0], strerror(-r));
                return r;
        }
        int status;
        r = wait_skopeo(o, pid, &status);
        if (r < 0)
                return r;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                *ret_error = error_tail(err);
                return -EIO;
        }
        if (!ret_out)
                return 0;
        if (lseek(out, 0, SEEK_SET) < 0)
                return negative_errno();
        return read_full_fd(out, max_out, ret_out, NULL);
}

static void add_tls(Argv *a, const RegistryOptions *o, const char *cert_dir_opt,
                    const char *tls_verify_opt) {
        argv_add_value(a, cert_dir_opt, o->cert_dir);
        if (o->insecure)
                argv_add(a, tls_verify_opt);
}

static void add_start(Argv *a, const RegistryOptions *o, const char *verb) {
        argv_add(a, o->skopeo ? o->skopeo : SKOPEO_BINARY);
        argv_add(a, "--insecure-policy");
        argv_add(a, verb);
        argv_add_value(a, "--authfile", o->authfile);
}

static int docker_ref(const char *image, char **ret) {
        return asprintf(ret, "docker://%s", image) < 0 ? -ENOMEM : 0;
}

/* The sizes of the config and the layers a manifest lists, added up; 0 if
 * it is no manifest or says nothing sensible. */
static uint64_t manifest_blob_bytes(const char *manifest) {
        _cleanup_cjson_ cJSON *j = cJSON_Parse(manifest);
        const cJSON *config = cJSON_GetObjectItemCaseSensitive(j, "config");
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
        const cJSON *e;
        uint64_t sum = 0;
        double v = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(config, "size"));
        if (v >= 0 && v < 0x1p53)
                sum += (uint64_t)v;
        if (!cJSON_IsArray(layers))
                return 0;
        cJSON_ArrayForEach(e, layers) {
                v = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "size"));
                if (!(v >= 0 && v < 0x1p53) || sum > UINT64_MAX / 2)
                        return 0;
                sum += (uint64_t)v;
        }
        return sum;
}

int registry_resolve(const RegistryOptions *o, const char *image,
                     char ret_digest[static IMAGE_DIGEST_LEN + 1], char **ret_error) {
        return registry_resolve_sized(o, image, ret_digest, NULL, ret_error);
}

int registry_resolve_sized(const RegistryOptions *o, const char *image,
                           char ret_digest[static IMAGE_DIGEST_LEN + 1], uint64_t *ret_blob_bytes,
                           char **ret_error) {
        _cleanup_free_ char *ref = NULL;
        int r = docker_ref(image, &ref);
        if (r < 0)
                return r;
        Argv a = {};
        add_start(&a, o, "inspect");
        argv_add(&a, "--raw");
        add_tls(&a, o, "--cert-dir", "--tls-verify=false");
        argv_add(&a, ref);
        _cleanup_free_ char **argv = NULL;
        r = argv_take(&a, &argv);
        if (r < 0)
                return r;
        _cleanup_free_ char *manifest = NULL;
        /* A manifest is small: no progress for it. */
        RegistryOptions quiet = *o;
        quiet.progress = NULL;
        r = run_skopeo(&quiet, argv, -EBADF, MANIFEST_MAX, &manifest, ret_error);
        if (r < 0)
                return r;
        char hex[65];
        sha256_hex(manifest, strlen(manifest), hex);
        snprintf(ret_digest, IMAGE_DIGEST_LEN + 1, "sha256:%s", hex);
        const char *at = strrchr(image, '@');
        if (at && !streq(at + 1, ret_digest)) {
                *ret_error = strdup_printf("the registry served a manifest of digest %s for %s", ret_digest,
                                           image);
                return -EBADMSG;
        }
        if (ret_blob_bytes)
                *ret_blob_bytes = manifest_blob_bytes(manifest);
        return 0;
}

/* Adds src and dst to a skopeo copy, runs it (fd 3 extra_fd when >= 0). */
static int run_copy(const RegistryOptions *o, Argv *a, const char *src, const char *dst, int extra_fd,
                    char **ret_error) {
        argv_add(a, src);
        argv_add(a, dst);
        _cleanup_free_ char **argv = NULL;
        int r = argv_take(a, &argv);
        if (r < 0)
                return r;
        return run_skopeo(o, argv, extra_fd, 0, NULL, ret_error);
}

int registry_push(const RegistryOptions *o, const char *layout_dir, const char *image,
                  char ret_digest[static IMAGE_DIGEST_LEN + 1], char **ret_error) {
        _cleanup_free_ char *src = NULL, *dst = NULL;
        if (asprintf(&src, "oci:%s", layout_dir) < 0 || docker_ref(image, &dst) < 0)
                return -ENOMEM;
        _cleanup_close_ int digest_fd = memfd_create("skopeo-digest", MFD_CLOEXEC);
        if (digest_fd < 0)
                return negative_errno();
        Argv a = {};
        add_start(&a, o, "copy");
        argv_add(&a, "--quiet");
        argv_add_value(&a, "--digestfile", "/dev/fd/3");
        argv_add_value(&a, "--retry-times", "3");
        add_tls(&a, o, "--dest-cert-dir", "--dest-tls-verify=false");
        if (o->compression == OCI_COMPRESSION_NONE)
                argv_add(&a, "--preserve-digests"); /* else skopeo gzips the uncompressed layer */
        else
                argv_add_value(&a, "--dest-compress-format", oci_compression_to_string(o->compression));
        char level[16];
        if (o->compression != OCI_COMPRESSION_NONE && o->compression_level > 0) {
                snprintf(level, sizeof(level), "%d", o->compression_level);
                argv_add_value(&a, "--dest-compress-level", level);
        }
        int r = run_copy(o, &a, src, dst, digest_fd, ret_error);
        if (r < 0)
                return r;
        char buf[IMAGE_DIGEST_LEN + 2] = {};
        ssize_t n = pread(digest_fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return negative_errno();
        buf[strcspn(buf, "\n")] = 0;
        if (!image_digest_valid(buf)) {
                *ret_error = strdup_printf("skopeo reported no valid digest for %s", image);
                return -EBADMSG;
        }
        memcpy(ret_digest, buf, IMAGE_DIGEST_LEN + 1);
        return 0;
}

int registry_pull(const RegistryOptions *o, const char *pinned_image, const char *layout_dir,
                  char **ret_error) {
        _cleanup_free_ char *src = NULL, *dst = NULL;
        if (docker_ref(pinned_image, &src) < 0 || asprintf(&dst, "oci:%s", layout_dir) < 0)
                return -ENOMEM;
        Argv a = {};
        add_start(&a, o, "copy");
        argv_add(&a, "--quiet");
        argv_add(&a, "--preserve-digests");
        argv_add(&a, "--dest-oci-accept-uncompressed-layers"); /* else it would have to gzip them */
        argv_add_value(&a, "--retry-times", "3");
        add_tls(&a, o, "--src-cert-dir", "--src-tls-verify=false");
        return run_copy(o, &a, src, dst, -EBADF, ret_error);
}
