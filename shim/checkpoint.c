/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "util.h"

#define COPY_CHUNK (1u << 30)

void checkpoint_options_done(CheckpointOpts *o) {
        strv_free(o->empty_namespaces);
        free(o->work_path);
        *o = (CheckpointOpts){};
}

int checkpoint_options_from_any(const Google__Protobuf__Any *any, CheckpointOpts *ret) {
        CheckpointOpts o = {};

        *ret = o;
        if (!any || isempty(any->type_url))
                return 0;
        if (!streq(any->type_url, CHECKPOINT_OPTIONS_TYPE))
                return -EINVAL;
        Containerd__Runc__V1__CheckpointOptions *m =
                containerd__runc__v1__checkpoint_options__unpack(NULL, any->value.len, any->value.data);
        if (!m)
                return -EBADMSG;
        o.exit = m->exit;
        o.open_tcp = m->open_tcp;
        o.external_unix_sockets = m->external_unix_sockets;
        o.terminal = m->terminal;
        o.file_locks = m->file_locks;
        int r = 0;
        if (m->n_empty_namespaces > 16)
                r = -E2BIG;
        if (r >= 0 && !isempty(m->work_path)) {
                if (m->work_path[0] != '/')
                        r = -EINVAL;
                else if (!(o.work_path = strdup(m->work_path)))
                        r = -ENOMEM;
        }
        if (r >= 0 && m->n_empty_namespaces > 0) {
                o.empty_namespaces = calloc(m->n_empty_namespaces + 1, sizeof(char *));
                for (size_t i = 0; o.empty_namespaces && i < m->n_empty_namespaces; i++)
                        if (!(o.empty_namespaces[i] = strdup(m->empty_namespaces[i])))
                                r = -ENOMEM;
                if (!o.empty_namespaces)
                        r = -ENOMEM;
        }
        containerd__runc__v1__checkpoint_options__free_unpacked(m, NULL);
        if (r < 0) {
                checkpoint_options_done(&o);
                return r;
        }
        *ret = o;
        return 0;
}

int restore_reference(const Spec *spec, const char **ret) {
        const char *ref = spec_env(spec, RESTORE_ENV);
        if (!ref)
                ref = spec_annotation(spec, RESTORE_ANNOTATION);
        *ret = NULL;
        if (!ref)
                return 0;
        size_t l = strlen(ref);
        if (l == 0 || l > RESTORE_REFERENCE_MAX)
                return -EINVAL;
        for (size_t i = 0; i < l; i++)
                if ((unsigned char)ref[i] < 0x20 || ref[i] == 0x7f)
                        return -EINVAL;
        *ret = ref;
        return 1;
}

static char *annotation_or_empty(const Spec *spec, const char *key, const char *alt) {
        const char *v = spec_annotation(spec, key);
        if (!v && alt)
                v = spec_annotation(spec, alt);
        return (char *)(v ? v : "");
}

void restore_target_from_spec(const Spec *spec, const char *ns, const char *id,
                              Kybernate__V1__RestoreTarget *t) {
        kybernate__v1__restore_target__init(t);
        t->containerd_namespace = (char *)ns;
        t->container_id = (char *)id;
        t->k8s_namespace = annotation_or_empty(spec, "io.kubernetes.cri.sandbox-namespace",
                                               "io.kubernetes.pod.namespace");
        t->k8s_pod = annotation_or_empty(spec, "io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name");
        t->k8s_container = annotation_or_empty(spec, "io.kubernetes.cri.container-name",
                                               "io.kubernetes.container.name");
        t->image_ref = annotation_or_empty(spec, "io.kubernetes.cri.image-name", NULL);
}

int fork_call(Reaper *reaper, int (*fn)(const void *arg), const void *arg, ReaperExitFn cb, void *userdata) {
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                int r = fn(arg);
                _exit(r < 0 ? MIN(-r, 125) : 0);
        }
        int r = reaper_watch(reaper, pid, cb, userdata);
        if (r < 0)
                (void)kill(pid, SIGKILL);
        return r;
}

static int copy_fd(int in, int out) {
        for (;;) {
                ssize_t k = sendfile(out, in, NULL, COPY_CHUNK);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        return 0;
        }
}

int copy_dir_files(const char *src, const char *dst) {
        _cleanup_close_ int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (sfd < 0 || dfd < 0)
                return negative_errno();
        DIR *d;
        int r = dir_open_fd(sfd, &d);
        if (r < 0)
                return r;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                if (de->d_type != DT_REG)
                        continue;
                /* containerd only reads the images (it tars them into its content store), so
                 * on the same filesystem a hard link is enough and costs nothing at 1 GiB. */
                if (linkat(sfd, de->d_name, dfd, de->d_name, 0) == 0)
                        continue;
                if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
                        r = negative_errno();
                        break;
                }
                _cleanup_close_ int in = openat(sfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                _cleanup_close_ int out =
                        openat(dfd, de->d_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (in < 0 || out < 0)
                        r = negative_errno();
                else
                        r = copy_fd(in, out);
        }
        closedir(d);
        return r;
}

int keep_criu_log(const char *work, const char *name, const char *id, char **ret_path) {
        _cleanup_free_ char *src = NULL, *dst = NULL;
        char stamp[32];

        if (mkdir_p(CRIU_LOG_DIR, 0700) < 0)
                return negative_errno();
        snprintf(stamp, sizeof(stamp), "%lld", (long long)(now_realtime_ns() / (int64_t)NSEC_PER_SEC));
        if (asprintf(&src, "%s/%s", work, name) < 0 ||
            asprintf(&dst, CRIU_LOG_DIR "/%s-%s-%s", id, stamp, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0)
                return negative_errno();
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return negative_errno();
        int r = copy_fd(in, out);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(dst);
        return 0;
}
